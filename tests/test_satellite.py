"""A real voice satellite on a real Home Assistant with Local Voice.

scripts/satellite.py runs wyoming-satellite 1.0.0 from its own venv, with a
microphone that plays WAV files in real time (silence in between) and a
speaker that writes each reply it plays to a file. `develop_hass` is
scripts/develop: a real `hass` with Local Voice added with its defaults, the
speech servers on their usual ports and the demo home.

The satellite is added the way a user adds one, through the core `wyoming`
integration's config flow with its host and port. It streams its microphone
all the time; Home Assistant listens for "Alexa" with the pipeline that the
satellite's pipeline select names. Spoken commands must switch the kitchen
light and the satellite must play the spoken answer: as long as the audio the
pipeline's text-to-speech made for it. Each command must be reported by a
`local_voice_command` event that names the satellite. An announcement must
play as long as the text-to-speech audio of its message, and so must the
README's announcement example (local_voice.synthesize, then
assist_satellite.announce with its media id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import signal
import socket
import struct
import subprocess
import time
from typing import Any

import aiohttp
import pytest

from scripts.children import end_with_parent
from scripts.commands import normalize
from scripts.home_assistant import Api
from scripts.servers.launch import PROJECT, free_port
from scripts.speech import BYTES_PER_SECOND, RATE, Speech, SpeechMaker, silence
from tests.develop_process import Develop
from tests.test_readme_examples import ANNOUNCE, readme_example

pytestmark = pytest.mark.servers

# Named as in the README's announcement example, which runs on it.
NAME = "Kitchen satellite"
LIGHT = "light.kitchen_light"
LOCK = "lock.front_door"
ASSISTANT = "Local Voice"  # the pipeline of the assistant scripts/develop adds
ANNOUNCEMENT = "The washing machine has finished. Please take out the laundry."
# The satellite resamples what it plays to its speaker's 16 kHz one chunk
# (1024 samples) at a time and gains up to a sample per chunk: 1.4 ms a
# second. 20 ms covers that for 14 s of audio.
LENGTH_TOLERANCE = 0.02
# Loudness envelopes (10 ms frames) of the audio played and the audio made
# correlate at 0.99 and more; another sentence of the same voice ("Turned off
# the light" for "Turned on the light") at about 0.5, another take of the same
# sentence at 0.8 to 0.96. At least 0.9: it is this sentence that was played.
SAME_AUDIO = 0.9
START_LIMIT = 30.0
SATELLITE_VENV = os.environ.get("LV_SATELLITE_VENV", "")


@dataclass
class Satellite:
    """The running satellite: its port and its microphone's and speaker's folders."""

    port: int
    mic: Path
    snd: Path
    events: Path
    log: Path
    # Home Assistant's log, whose lines about satellites a failure shows.
    hass_log: Path | None = None

    def say(self, speech: Speech, name: str) -> Path:
        """Queue speech for the microphone; return the file it deletes once played."""
        part = self.mic / f"{name}.wav.part"
        part.write_bytes(speech.wav())
        return part.rename(self.mic / f"{name}.wav")

    def replies(self) -> set[Path]:
        """Return the replies the speaker has played to the end."""
        return set(self.snd.glob("reply-*.raw"))

    def heard(self) -> list[tuple[str, str]]:
        """Return the events Home Assistant sent that the satellite logged."""
        if not self.events.exists():
            return []
        lines = self.events.read_text(encoding="utf-8").splitlines()
        return [(e["event"], e["text"]) for e in map(json.loads, lines)]

    def tail(self) -> str:
        """Return the end of the satellite's log, its timed events, Home Assistant's lines."""
        own = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
        events = (
            self.events.read_text(errors="replace")[-3000:]
            if self.events.exists()
            else ""
        )
        about = ("wyoming", "assist_pipeline", "assist_satellite", "local_voice")
        lines = (
            [
                line
                for line in self.hass_log.read_text(errors="replace").splitlines()
                if any(word in line for word in about)
            ][-60:]
            if self.hass_log is not None and self.hass_log.exists()
            else []
        )
        return (
            f"{own}\n--- timed events ---\n{events}"
            f"--- Home Assistant ---\n" + "\n".join(line[:400] for line in lines)
        )


def _group_alive(pgid: int) -> bool:
    """Return True while any process of the group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def satellite(tmp_path: Path, socket_enabled: None) -> Iterator[Satellite]:
    """Run scripts/satellite.py in the satellite venv; stop it and its programs."""
    python = Path(SATELLITE_VENV) / "bin" / "python"
    if not SATELLITE_VENV or not python.exists():
        pytest.fail("no satellite venv (LV_SATELLITE_VENV): run scripts/setup")
    sat = Satellite(
        free_port(),
        tmp_path / "mic",
        tmp_path / "snd",
        tmp_path / "events.jsonl",
        tmp_path / "log",
    )
    with sat.log.open("wb") as log:
        process = subprocess.Popen(
            [
                python,
                "scripts/satellite.py",
                "run",
                *("--port", str(sat.port), "--name", NAME),
                *("--mic", str(sat.mic), "--snd", str(sat.snd)),
                *("--events", str(sat.events)),
            ],
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SIGTERM, as below, if the tests end without stopping it (killed).
            preexec_fn=end_with_parent(signal.SIGTERM),  # noqa: PLW1509
        )
    try:
        deadline = time.monotonic() + START_LIMIT
        while True:
            assert process.poll() is None, f"the satellite exited:\n{sat.tail()}"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", sat.port)) == 0:
                    break
            assert time.monotonic() < deadline, f"no satellite:\n{sat.tail()}"
            time.sleep(0.2)
        yield sat
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"the satellite did not stop on SIGTERM:\n{sat.tail()}")
        # Its microphone program (and a speaker program, if one was playing)
        # must end with it.
        deadline = time.monotonic() + 5
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"the satellite left processes behind:\n{sat.tail()}")


async def _wait(
    what: str, probe: Callable[[], Awaitable[Any]], within: float, sat: Satellite
) -> Any:
    """Poll until probe() returns something truthy; return it."""
    deadline = time.monotonic() + within
    while not (result := await probe()):
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}\nevents: {sat.heard()}\n"
            f"--- satellite log ---\n{sat.tail()}"
        )
        await asyncio.sleep(0.2)
    return result


def _pcm_of_wav(data: bytes) -> tuple[int, bytes]:
    """Return the sample rate and 16-bit mono samples of a WAV file.

    The samples are all that follows the data chunk's header, whatever size
    the header gives.
    """
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:16]
    offset = 12
    rate = 0
    while offset + 8 <= len(data):
        kind, size = (
            data[offset : offset + 4],
            struct.unpack_from("<I", data, offset + 4)[0],
        )
        body = offset + 8
        if kind == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            assert (channels, bits) == (1, 16), (channels, bits)
        elif kind == b"data":
            return rate, data[body:]
        offset = body + size + (size & 1)
    raise AssertionError("no data chunk")


def _envelope(pcm: bytes, rate: int) -> list[float]:
    """Return the RMS loudness of each 10 ms of 16-bit mono audio."""
    samples = memoryview(pcm[: len(pcm) // 2 * 2]).cast("h")
    frame = rate // 100
    return [
        math.sqrt(sum(x * x for x in samples[i : i + frame]) / frame)
        for i in range(0, len(samples) - frame + 1, frame)
    ]


def _correlation(a: list[float], b: list[float]) -> float:
    """Return Pearson's correlation of two series, over the shorter length."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    mean_a, mean_b = sum(a) / n, sum(b) / n
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    var_a = sum((x - mean_a) ** 2 for x in a)
    var_b = sum((y - mean_b) ** 2 for y in b)
    return cov / math.sqrt(var_a * var_b)


@dataclass
class Home:
    """Home Assistant as the test drives it, and the satellite's entities in it."""

    api: Api
    sat: Satellite
    tts: dict[str, Any]  # the text-to-speech of the assistant's pipeline
    select: str
    assist_satellite: str

    async def state(self, entity_id: str) -> dict[str, Any]:
        """Return an entity's state object."""
        result: dict[str, Any] = await self.api.request(
            "GET", f"/api/states/{entity_id}"
        )
        return result

    async def call(self, domain: str, service: str, **data: Any) -> None:
        """Call a service and wait for it to finish."""
        await self.api.request("POST", f"/api/services/{domain}/{service}", data)

    async def events_after(self, count: int, kinds: set[str]) -> list[tuple[str, str]]:
        """Wait until the satellite has got each of `kinds` after its first `count` events.

        Return the events after the first `count`.
        """

        async def got() -> list[tuple[str, str]] | None:
            new = self.sat.heard()[count:]
            return new if kinds <= {kind for kind, _ in new} else None

        result: list[tuple[str, str]] = await _wait(
            f"the satellite to get {sorted(kinds)}", got, 30, self.sat
        )
        return result

    async def listening(self) -> None:
        """Wait until Home Assistant reads the satellite's audio in its latest run.

        Home Assistant's `wyoming` satellite loop has a race: when a run ends
        in the same wake-up as an event from the satellite is read, it starts
        the next run and drops that read; it reads nothing more, so the new
        run gets no audio (though the satellite is told it listens), and 5 s
        later it drops the connection and connects again. Its debug log says
        "Receiving audio from satellite" once a run gets audio, so a command
        is said only then: a command said into a run that gets no audio is
        lost whatever the speech servers and the assistant do. Each time the
        race struck is printed.
        """
        log = self.sat.hass_log
        assert log is not None

        def reading() -> bool | None:
            lines = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "assist_satellite]" in line
            ]
            starts = [
                i for i, line in enumerate(lines) if "Received run information" in line
            ]
            if not starts:
                return None
            return any(
                "Receiving audio from satellite" in line
                for line in lines[starts[-1] + 1 :]
            )

        async def run_gets_audio() -> bool:
            return bool(reading())

        waited = time.monotonic()
        # Twice Home Assistant's 5 s ping timeout and its 3 s wait to connect.
        await _wait(
            "a run that gets the satellite's audio", run_gets_audio, 20, self.sat
        )
        if (late := time.monotonic() - waited) > 1.0:
            print(f"Home Assistant read no audio for {late:.1f} s (its satellite race)")

    async def select_pipeline(self, option: str) -> None:
        """Choose the satellite's pipeline; wait until a run of it listens.

        Home Assistant ends the run under way when the choice changes and
        starts one with the new pipeline, which tells the satellite that it
        listens for the wake word (detect). The run under way has told it
        already (see command), so the next detect is the new run's.
        """
        options = (await self.state(self.select))["attributes"]["options"]
        assert option in options, options
        count = len(self.sat.heard())
        await self.call("select", "select_option", entity_id=self.select, option=option)
        assert (await self.state(self.select))["state"] == option
        await self.events_after(count, {"detect"})
        await self.listening()

    async def speech_of(self, text: str) -> tuple[int, bytes]:
        """Return the audio of the assistant's text-to-speech for `text`.

        With a satellite's options (WAV, 22.05 kHz, mono, 16 bit), as its
        replies and announcements are made; Home Assistant's cache holds the
        very audio the satellite got, under the same key.
        """
        options: dict[str, Any] = {
            "preferred_format": "wav",
            "preferred_sample_rate": 22050,
            "preferred_sample_channels": 1,
            "preferred_sample_bytes": 2,
        }
        if self.tts.get("voice"):
            options["voice"] = self.tts["voice"]
        made = await self.api.request(
            "POST",
            "/api/tts_get_url",
            {
                "engine_id": self.tts["engine"],
                "message": text,
                "language": self.tts["language"],
                "options": options,
            },
        )
        async with self.api.session.get(made["url"]) as response:
            assert response.status == 200, (made, response.status)
            return _pcm_of_wav(await response.read())

    async def new_reply(self, before: set[Path]) -> bytes:
        """Wait for the one reply the satellite played after `before`; return it."""

        async def new_replies() -> set[Path]:
            return self.sat.replies() - before

        new = await _wait("the satellite to play a reply", new_replies, 60, self.sat)
        assert len(new) == 1, new
        return new.pop().read_bytes()

    async def exchange(self, speech: Speech, name: str) -> tuple[dict[str, str], bytes]:
        """Say `speech`; return what the satellite was told, and the reply it played.

        Waits until the pipeline listens for the wake word again.
        """
        await self.listening()
        count = len(self.sat.heard())
        replies = self.sat.replies()
        queued = self.sat.say(speech, name)

        async def played() -> bool:
            return not queued.exists()

        await _wait(
            f"the microphone to play {name}", played, speech.seconds + 10, self.sat
        )
        events = await self.events_after(
            count, {"detection", "transcript", "synthesize"}
        )
        heard = dict(events)
        print(
            f"{name}: heard {heard['transcript']!r}, answered {heard['synthesize']!r}"
        )
        assert heard["detection"] == "alexa", heard
        reply = await self.new_reply(replies)
        # The pipeline starts again and listens for the next command.
        answered = count + [kind for kind, _ in events].index("synthesize") + 1
        await self.events_after(answered, {"detect"})
        return heard, reply

    async def command(self, speech: Speech, name: str, state: str) -> str:
        """Say `speech` to the satellite; check the light and the spoken answer.

        Return the transcript.
        """
        heard, reply = await self.exchange(speech, name)

        async def switched() -> bool:
            return bool((await self.state(LIGHT))["state"] == state)

        await _wait(f"{LIGHT} to be {state} (heard {heard})", switched, 10, self.sat)
        rate, made = await self.speech_of(heard["synthesize"])
        assert_same_audio(made, rate, reply, f"the answer to {name}")
        return heard["transcript"]

    async def lock_state(self) -> str:
        """Return the front door's state."""
        return str((await self.state(LOCK))["state"])


def assert_same_audio(made: bytes, rate: int, played: bytes, what: str) -> None:
    """Assert the speaker played `made` (at `rate`) whole, at 16 kHz."""
    expected = len(made) / 2 / rate
    seconds = len(played) / BYTES_PER_SECOND
    correlation = _correlation(_envelope(made, rate), _envelope(played, RATE))
    print(
        f"{what}: played {seconds:.3f} s, text-to-speech made {expected:.3f} s,"
        f" loudness correlation {correlation:.3f}"
    )
    assert expected > 0.5, f"{what}: {expected:.3f} s of text-to-speech"
    assert abs(seconds - expected) <= LENGTH_TOLERANCE, (what, seconds, expected)
    assert correlation >= SAME_AUDIO, (what, correlation)


class SubscribedCommands:
    """The `local_voice_command` events, through a websocket of their own."""

    def __init__(self, api: Api) -> None:
        """Subscribe later, with start()."""
        self.api = api
        self.events: list[dict[str, Any]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe to the event."""
        ws = self._ws = await self.api.session.ws_connect(
            self.api.base_url + "/api/websocket"
        )
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": self.api.token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json(
            {"id": 1, "type": "subscribe_events", "event_type": "local_voice_command"}
        )
        assert (await ws.receive_json())["success"]
        self._reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            data = message.json()
            if data.get("type") == "event":
                self.events.append(data["event"]["data"])

    async def count(self, wanted: int, sat: Satellite) -> list[dict[str, Any]]:
        """Wait for `wanted` events in all; return them."""

        async def enough() -> bool:
            return len(self.events) >= wanted

        await _wait(f"{wanted} local_voice_command events", enough, 15, sat)
        return self.events

    async def close(self) -> None:
        """Unsubscribe."""
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()


async def _add_satellite(api: Api, port: int) -> str:
    """Add the satellite through the wyoming config flow; return the entry id."""
    flow = await api.request(
        "POST", "/api/config/config_entries/flow", {"handler": "wyoming"}
    )
    assert (flow["type"], flow["step_id"]) == ("form", "user"), flow
    result = await api.request(
        "POST",
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"host": "127.0.0.1", "port": port},
    )
    assert result["type"] == "create_entry", result
    assert result["title"] == NAME, result
    return str(result["result"]["entry_id"])


async def test_a_satellite_hears_commands_and_announces(
    develop_hass: Develop, satellite: Satellite, tmp_path: Path
) -> None:
    """'Alexa. Turn on/off the kitchen light' and an announcement, on a satellite.

    The second command is said without a breath after "Alexa".
    """
    speech = SpeechMaker(0, tmp_path)  # espeak-ng only: the same every time

    def command(text: str) -> Speech:
        # A breath after "Alexa", as most people leave one (without it:
        # tests/test_wake_check.py).
        return speech.espeak("Alexa.") + silence(0.4) + speech.espeak(text)

    def without_a_breath(text: str) -> Speech:
        # The command 0.2 s after "Alexa": it has begun when the wake word
        # server fires; Local Voice hands on the audio from before that.
        return (
            speech.espeak("Alexa.").trimmed()
            + silence(0.2)
            + speech.espeak(text).trimmed()
            + silence(0.5)
        )

    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        api = Api(session, develop_hass.url)
        await api.get_token(await api.login())
        commands = SubscribedCommands(api)
        await commands.start()
        entry_id: str | None = None
        satellite.hass_log = develop_hass.folder / "config" / "home-assistant.log"
        try:
            # What a failure shows: how Home Assistant ran the satellite.
            await api.request(
                "POST",
                "/api/services/logger/set_level",
                {
                    "homeassistant.components.wyoming": "debug",
                    "homeassistant.components.assist_satellite": "debug",
                    "custom_components.local_voice": "debug",
                },
            )
            await api.request(
                "POST", "/api/services/light/turn_off", {"entity_id": LIGHT}
            )
            entry_id = await _add_satellite(api, satellite.port)
            entities = [
                e
                for e in await api.ws("config/entity_registry/list")
                if e["config_entry_id"] == entry_id
            ]
            pipelines = await api.ws("assist_pipeline/pipeline/list")
            pipeline = next(p for p in pipelines["pipelines"] if p["name"] == ASSISTANT)
            assert pipelines["preferred_pipeline"] == pipeline["id"]
            home = Home(
                api,
                satellite,
                {
                    "engine": pipeline["tts_engine"],
                    "language": pipeline["tts_language"],
                    "voice": pipeline["tts_voice"],
                },
                select=next(
                    e["entity_id"]
                    for e in entities
                    if e["unique_id"].endswith("-pipeline")
                ),
                assist_satellite=next(
                    e["entity_id"]
                    for e in entities
                    if e["entity_id"].startswith("assist_satellite.")
                ),
            )

            # Home Assistant connects and listens for the wake word.
            await home.events_after(0, {"detect"})
            # The assistant by its name, then "preferred" (which is it too).
            await home.select_pipeline(ASSISTANT)
            await home.command(command("Turn on the kitchen light."), "light-on", "on")
            await home.select_pipeline("preferred")
            heard = await home.command(
                without_a_breath("Turn off the kitchen light."), "light-off", "off"
            )
            # Nothing lost at its start, and no wake word in it.
            said = normalize(heard).split()
            assert said[:2] == ["turn", "off"] and "alexa" not in said, heard

            # Each command was reported, with the satellite that heard it.
            events = await commands.count(2, satellite)
            assert len(events) == 2, events
            for event in events[:2]:
                assert event["assistant"] == ASSISTANT
                assert event["satellite_id"] == home.assist_satellite
                assert event["success"] is True
                assert event["targets"] == [LIGHT]
                assert "transcript" not in event
                for key in ("transcript", "intent", "first_audio"):
                    assert event[f"speech_to_{key}_ms"] > 0, event
            print(f"command events: {events}")

            # An unlock is asked about; the satellite (which does not keep
            # listening by itself) is answered after the wake word, in the
            # same conversation.
            await home.call("lock", "lock", entity_id=LOCK)
            for number, (answer, state, said) in enumerate(
                (
                    ("Yes.", "unlocked", "confirmed"),
                    ("No.", "locked", "declined"),
                    (None, "locked", "no_answer"),
                )
            ):
                if state == "locked":
                    await home.call("lock", "lock", entity_id=LOCK)
                heard, _ = await home.exchange(
                    command("Unlock the front door."), f"unlock-{said}"
                )
                assert heard["synthesize"] == "Unlock the front door?", heard
                assert await home.lock_state() == "locked"
                reply = (
                    command(answer)
                    if answer is not None
                    else speech.espeak("Alexa.") + silence(6)
                )
                heard, _ = await home.exchange(reply, f"answer-{said}")
                if said == "confirmed":
                    assert heard["synthesize"] != "Unlock the front door?", heard
                elif said == "declined":
                    assert heard["synthesize"] == (
                        "OK, I won't unlock the front door."
                    ), heard
                else:
                    assert heard["synthesize"].startswith("No answer"), heard

                async def locked_as(state: str = state) -> bool:
                    return await home.lock_state() == state

                await _wait(f"{LOCK} to be {state}", locked_as, 10, satellite)
                reported = await commands.count(2 + 2 * (number + 1), satellite)
                assert reported[-1]["confirmation"] == said, reported[-1]
                assert any(e["asked"] for e in reported[-2:]), reported[-2:]

            replies = satellite.replies()
            await home.call(
                "assist_satellite",
                "announce",
                entity_id=home.assist_satellite,
                message=ANNOUNCEMENT,
                preannounce=False,
            )
            announced = await home.new_reply(replies)
            rate, made = await home.speech_of(ANNOUNCEMENT)
            assert_same_audio(made, rate, announced, "the announcement")

            # The README's example: a file in the assistant's voice, announced.
            example = readme_example(ANNOUNCE)
            assert example["actions"][1]["target"]["entity_id"] == (
                home.assist_satellite
            )
            replies = satellite.replies()
            await api.ws("execute_script", sequence=example["actions"])
            announced = await home.new_reply(replies)
            (spoken,) = (develop_hass.config_dir / "media" / "local_voice").glob(
                "*.wav"
            )
            rate, made = _pcm_of_wav(spoken.read_bytes())
            assert_same_audio(made, rate, announced, "the README's announcement")
        finally:
            if entry_id is not None:
                # Home Assistant pauses the satellite and lets go of it.
                await api.request(
                    "DELETE", f"/api/config/config_entries/entry/{entry_id}"
                )
            await commands.close()
            await api.close()
