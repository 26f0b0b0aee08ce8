"""Assist in a real browser: Chromium, a fake microphone, a real Home Assistant.

`develop_hass` runs `scripts/develop` (a real `hass`, Local Voice added with
its defaults, the speech servers on their usual ports). Chromium logs in as
the demo user, opens Assist with the key "a" on the dashboard and presses the
microphone button; its microphone plays a WAV file of a spoken command. The
light must change, the dialog must show the command and the answer, and the
spoken answer must load. Then a typed command in the same dialog.

Chromium comes from scripts/setup (see tests/browser.py); without it the test
fails and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from pathlib import Path
import re
import time
from typing import Any

from playwright.sync_api import (
    APIResponse,
    Error as PlaywrightError,
    Locator,
    Page,
    Playwright,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)
import pytest

from scripts.home_assistant import SERVER_PORTS
from scripts.speech import SpeechMaker, silence
from tests.browser import NoBrowserError, find_chromium, launch_args
from tests.develop_process import Develop

pytestmark = pytest.mark.servers

SPOKEN = "Turn on the kitchen light."
TYPED = "turn off the kitchen light"
LIGHT = "light.kitchen_light"
TURNED_ON = "Turned on the light"
TURNED_OFF = "Turned off the light"
# Home Assistant's own English texts in the Assist dialog.
MICROPHONE = "Start listening"
REQUEST_FIELD = "Enter a request"
# Chromium's capture starts when the dialog opens the microphone, before the
# dialog's recorder is connected and streams to Home Assistant (longer on a
# busy machine): a second of silence first, as a person who presses the
# button and then speaks leaves, so that no word is cut.
LEADING_SILENCE = 1.0
# Silence after the command, so that Home Assistant's voice activity
# detection ends it as it ends a live one.
TRAILING_SILENCE = 4.0
# A laptop's screen. The dialog sits over the dashboard, and redrawing that for
# every frame of the listening animation takes headless Chromium (software
# rendering) a whole CPU core, which on a small machine slows the speech
# servers down several times over: the assistant must still answer.
VIEWPORT = ViewportSize(width=1280, height=720)
# Generous: the speech servers may be shared with other work.
ANSWER_WITHIN = 60.0
STATE_WITHIN = 10.0

# The visible text of an element, through every shadow root below it; Home
# Assistant's frontend keeps the dialog's messages in nested shadow roots.
DEEP_TEXT = """(root) => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      if (text) out.push(text);
      return;
    }
    if (node.nodeName === "STYLE" || node.nodeName === "SCRIPT") return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(root);
  return out.join("\\n");
}"""


class Rest:
    """Home Assistant's REST API as the demo user, beside the browser's session."""

    def __init__(self, playwright: Playwright, develop: Develop) -> None:
        """Log in with the login flow and keep a client with the access token."""
        client_id = f"{develop.url}/"
        login = playwright.request.new_context(base_url=develop.url)
        try:
            flow = self._json(
                login.post(
                    "/auth/login_flow",
                    data={
                        "client_id": client_id,
                        "handler": ["homeassistant", None],
                        "redirect_uri": f"{client_id}?auth_callback=1",
                    },
                )
            )
            result = self._json(
                login.post(
                    f"/auth/login_flow/{flow['flow_id']}",
                    data={
                        "client_id": client_id,
                        "username": develop.username,
                        "password": develop.password,
                    },
                )
            )
            assert result.get("type") == "create_entry", result
            token = self._json(
                login.post(
                    "/auth/token",
                    form={
                        "grant_type": "authorization_code",
                        "code": result["result"],
                        "client_id": client_id,
                    },
                )
            )["access_token"]
        finally:
            login.dispose()
        self.api = playwright.request.new_context(
            base_url=develop.url,
            extra_http_headers={"Authorization": f"Bearer {token}"},
        )

    @staticmethod
    def _json(response: APIResponse) -> Any:
        assert response.ok, f"{response.url}: {response.status} {response.text()}"
        return response.json()

    def state(self, entity_id: str) -> str:
        """Return an entity's state."""
        return str(self._json(self.api.get(f"/api/states/{entity_id}"))["state"])

    def call(self, domain: str, service: str, **data: Any) -> None:
        """Call a service."""
        self._json(self.api.post(f"/api/services/{domain}/{service}", data=data))

    def wait_for_state(self, entity_id: str, state: str) -> str:
        """Return the entity's state once it is `state`, or after STATE_WITHIN."""
        deadline = time.monotonic() + STATE_WITHIN
        while (current := self.state(entity_id)) != state and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        return current

    def close(self) -> None:
        """Close the client."""
        self.api.dispose()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Return the Chromium to drive; fail before Home Assistant starts without one."""
    with sync_playwright() as playwright:
        bundled = playwright.chromium.executable_path
    try:
        return find_chromium(bundled)
    except NoBrowserError as err:
        missing = str(err)
    pytest.fail(missing, pytrace=False)


@pytest.fixture
def microphone(tmp_path: Path) -> Path:
    """Return a WAV file of SPOKEN (espeak-ng, 16 kHz) between silences."""
    speech = SpeechMaker(SERVER_PORTS["piper"], tmp_path).espeak(SPOKEN)
    wav = tmp_path / "microphone.wav"
    wav.write_bytes(
        (silence(LEADING_SILENCE) + speech + silence(TRAILING_SILENCE)).wav()
    )
    return wav


def dialog_text(page: Page) -> str:
    """Return the Assist dialog's text, or the page's if there is no dialog."""
    dialog = page.locator("ha-voice-command-dialog")
    root = dialog if dialog.count() else page.locator("body")
    return str(root.first.evaluate(DEEP_TEXT))


def last_message(page: Page, who: str) -> Locator:
    """Return the dialog's last message from `who`: "user" or "hass"."""
    return page.locator(f"ha-assist-chat .message.{who}").last


def is_spoken_answer(response: Response) -> bool:
    """Return True for the request of the spoken answer's audio."""
    return "/api/tts_proxy/" in response.url


@contextlib.contextmanager
def explained(page: Page, develop: Develop, shots: Path, step: str) -> Iterator[None]:
    """Turn a failure in `step` into one that shows what the browser showed."""
    try:
        yield
    except (AssertionError, PlaywrightError) as err:
        shot = shots / f"{step}.png"
        try:
            page.screenshot(path=str(shot))
            text = dialog_text(page)
        except PlaywrightError as inner:
            text = f"(the page could not be read: {inner})"
        raise AssertionError(
            f"{step}: {err}\n"
            f"--- screenshot: {shot}\n"
            f"--- page {page.url}:\n{text}\n"
            f"--- scripts/develop:\n{develop.tail(3000)}"
        ) from err


@contextlib.contextmanager
def assist_page(
    playwright: Playwright, chromium: str, microphone: Path
) -> Iterator[Page]:
    """Yield a page of a Chromium whose microphone plays `microphone`."""
    browser = playwright.chromium.launch(
        executable_path=chromium, args=launch_args(microphone)
    )
    try:
        context = browser.new_context(permissions=["microphone"], viewport=VIEWPORT)
        yield context.new_page()
    finally:
        browser.close()


def open_assist(page: Page, develop: Develop, shots: Path) -> Locator:
    """Log in, open the Assist dialog; return its microphone button."""
    with explained(page, develop, shots, "login"):
        page.goto(develop.url)
        page.locator("input[name=username]").fill(develop.username)
        page.locator("input[name=password]").fill(develop.password)
        page.keyboard.press("Enter")
        page.wait_for_url("**/home/overview", timeout=60_000)

    with explained(page, develop, shots, "open-assist"):
        page.keyboard.press("a")
        mic = page.get_by_role("button", name=MICROPHONE)
        mic.wait_for(timeout=30_000)
    return mic


def test_assist_dialog_in_a_browser(
    chromium: str, develop_hass: Develop, microphone: Path, tmp_path: Path
) -> None:
    """Speak into Assist's microphone, then type: the light follows, the dialog answers."""
    stack = contextlib.ExitStack()
    with sync_playwright() as playwright:
        rest = Rest(playwright, develop_hass)
        rest.call("light", "turn_off", entity_id=LIGHT)
        assert rest.wait_for_state(LIGHT, "off") == "off"
        try:
            page = stack.enter_context(assist_page(playwright, chromium, microphone))
            mic = open_assist(page, develop_hass, tmp_path)

            with explained(page, develop_hass, tmp_path, "spoken-command"):
                with page.expect_response(
                    is_spoken_answer, timeout=ANSWER_WITHIN * 1000
                ) as spoken_answer:
                    mic.click()
                    expect(last_message(page, "hass")).to_have_text(
                        TURNED_ON, timeout=ANSWER_WITHIN * 1000
                    )
                # What speech-to-text heard replaces the "…" of the request.
                expect(last_message(page, "user")).to_contain_text(
                    "kitchen light", ignore_case=True
                )
                assert rest.wait_for_state(LIGHT, "on") == "on", (
                    f"the dialog answered {TURNED_ON!r} but {LIGHT} is not on"
                )
                answer = spoken_answer.value
                assert answer.ok, f"the spoken answer {answer.url}: {answer.status}"
                assert answer.headers.get("content-type", "").startswith("audio/"), (
                    answer.headers
                )

            with explained(page, develop_hass, tmp_path, "typed-command"):
                field = page.get_by_role("textbox", name=REQUEST_FIELD)
                field.fill(TYPED)
                field.press("Enter")
                expect(last_message(page, "user")).to_have_text(TYPED)
                expect(last_message(page, "hass")).to_have_text(
                    TURNED_OFF, timeout=ANSWER_WITHIN * 1000
                )
                assert rest.wait_for_state(LIGHT, "off") == "off", (
                    f"the dialog answered {TURNED_OFF!r} but {LIGHT} is not off"
                )
        finally:
            stack.close()
            rest.close()


LOCK = "lock.front_door"
QUESTION = "unlock the front door?"


@pytest.mark.parametrize(
    ("answer", "state", "reply"),
    [
        ("yes", "unlocked", None),
        ("no", "locked", "OK, I won't unlock the front door."),
        (None, "locked", "No answer, so I won't unlock the front door."),
    ],
)
def test_the_dialog_asks_before_unlocking(
    chromium: str,
    develop_hass: Develop,
    tmp_path: Path,
    answer: str | None,
    state: str,
    reply: str | None,
) -> None:
    """An unlock said into the dialog is asked about; the dialog listens again.

    The microphone says the command, and then nothing: the dialog speaks the
    question and listens again by itself, and silence is no. A "yes" or "no"
    is typed into the dialog while it listens, in the same conversation.
    (Chromium's fake microphone plays its file once: the dialog's second
    recording gets silence.)
    """
    maker = SpeechMaker(0, tmp_path)
    # Whisper tiny hears "unlock" through Chromium's capture as "I lock" or
    # "I'm off" more often than not; after "please" it hears it.
    audio = silence(LEADING_SILENCE) + maker.espeak("Please unlock the front door.")
    microphone = tmp_path / "microphone.wav"
    microphone.write_bytes((audio + silence(TRAILING_SILENCE)).wav())
    stack = contextlib.ExitStack()
    with sync_playwright() as playwright:
        rest = Rest(playwright, develop_hass)
        rest.call("lock", "lock", entity_id=LOCK)
        assert rest.wait_for_state(LOCK, "locked") == "locked"
        try:
            page = stack.enter_context(assist_page(playwright, chromium, microphone))
            mic = open_assist(page, develop_hass, tmp_path)
            messages = page.locator("ha-assist-chat .message.hass")
            with explained(page, develop_hass, tmp_path, "question"):
                mic.click()
                # After the dialog's greeting.
                expect(messages.nth(1)).to_have_text(
                    re.compile(re.escape(QUESTION), re.IGNORECASE),
                    timeout=ANSWER_WITHIN * 1000,
                )
                assert rest.state(LOCK) == "locked"
            with explained(page, develop_hass, tmp_path, "answer"):
                if answer is not None:
                    field = page.get_by_role("textbox", name=REQUEST_FIELD)
                    field.fill(answer)
                    field.press("Enter")
                    expect(last_message(page, "user")).to_have_text(answer)
                expect(messages).to_have_count(3, timeout=ANSWER_WITHIN * 1000)
                if reply is not None:
                    expect(messages.last).to_have_text(
                        re.compile(re.escape(reply), re.IGNORECASE)
                    )
                else:
                    expect(messages.last).not_to_have_text(
                        re.compile(re.escape(QUESTION), re.IGNORECASE)
                    )
                assert rest.wait_for_state(LOCK, state) == state
        finally:
            stack.close()
            rest.close()
