"""A real Home Assistant (`hass`), set up through its public APIs as a newcomer would.

Shared by scripts/develop (develop.py), scripts/bench (bench.py) and the tests
of the real clients: where the configuration and logs go, the demo's
configuration.yaml and user, the usual ports of the speech servers, starting
and stopping `hass`, and `Api`, Home Assistant's REST and websocket APIs used
as the frontend uses them: onboarding, adding Local Voice through its config
flow with its defaults, arranging the demo home, and a spoken command through
the preferred pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, NoReturn

import aiohttp
import yaml

from scripts.children import end_with_parent
from scripts.demo_home import AREAS, CONFIG, EXPOSED
from scripts.speech import piper_wav, to_pcm16k

PROJECT = Path(__file__).resolve().parents[1]

# Where the configuration and logs go; the end-to-end test points it elsewhere.
DEVELOP = Path(os.environ.get("LOCAL_VOICE_DEVELOP_DIR", PROJECT / ".develop"))
CONFIG_DIR = DEVELOP / "config"
HA_LOG = DEVELOP / "home-assistant.log"
SERVER_LOGS = DEVELOP / "servers"
# Built-in components to load, besides the demo home's: default_config's
# useful part.
BUILT_IN = (
    "frontend",
    "config",
    "history",
    "logbook",
    "media_source",
    "assist_pipeline",
    "conversation",
    "diagnostics",
    "repairs",
)
SERVER_PORTS = {"piper": 10200, "whisper": 10300, "wakeword": 10400}
USER = {"name": "Demo", "username": "demo", "password": "demo-local-voice"}
LANGUAGE = "en"
# Home Assistant's default location (Amsterdam): met's onboarding flow adds no
# weather entry, which would need the internet, for it.
LATITUDE, LONGITUDE = 52.3731339, 4.8903147
# Onboarding's core_config step adds these internet services on its own. Their
# requirements are not installed (and HA runs with --skip-pip), so their flows
# fail to load, or their entry fails to set up and is removed again; the
# modules missing for them show up in the log (scripts/develop expects them).
ONBOARDING_CLOUD = ("google_translate", "met", "radio_browser")


class SetupError(Exception):
    """Something a newcomer would see fail; the message says what and where."""


def say(message: str) -> None:
    """Print a progress line, in bold like scripts/env.sh's lv_log."""
    print(f"\033[1m==> {message}\033[0m", flush=True)


def port_in_use(port: int) -> bool:
    """Return True if something accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def lan_address() -> str | None:
    """Return this machine's address on its default route, if it has one.

    Connecting a UDP socket only picks a route; no packet is sent.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") else address


def configuration(port: int, lan: bool) -> dict[str, Any]:
    """Return configuration.yaml: what default_config would load, minus the network.

    No default_config (cloud, bluetooth, zeroconf, ssdp and dhcp would send
    multicast on every interface) and no http: block (HA keeps that in its own
    store and reverts YAML changes nobody confirms; the port goes through
    SETUP_PORT instead). An internal_url, because Home Assistant finds none on
    its own when it listens on loopback only, and without one it cannot tell
    a satellite where to fetch an announcement (assist_satellite.announce).
    """
    host = (lan_address() if lan else None) or "127.0.0.1"
    return {
        "homeassistant": {
            "internal_url": f"http://{host}:{port}",
            "name": "Local Voice demo",
            "unit_system": "metric",
            "time_zone": "UTC",
            "latitude": LATITUDE,
            "longitude": LONGITUDE,
            "elevation": 0,
            "country": "US",
            "language": LANGUAGE,
        },
        **{domain: {} for domain in BUILT_IN},
        "logger": {"default": "info"},
        **CONFIG,
    }


def stored_port() -> int | None:
    """Return the HTTP port a kept config dir stored on its first start, if any."""
    path = CONFIG_DIR / ".storage" / "http"
    if not path.exists():
        return None
    data = json.loads(path.read_text())["data"]
    return int(data.get("stable", data)["server_port"])


def prepare_config(keep: bool, port: int, lan: bool) -> None:
    """Write the config dir, with Local Voice linked in as HACS would place it.

    Home Assistant keeps its HTTP settings in `.storage/http`; a first start
    finds them there (in the store's first format, which it migrates),
    listening on 127.0.0.1 only unless `lan` asks for every interface: the
    demo has a fixed password.
    """
    if keep and (old := stored_port()) not in (None, port):
        raise SetupError(
            f"{CONFIG_DIR} was made for port {old}; run without --keep to change it"
        )
    if CONFIG_DIR.exists() and not keep:
        shutil.rmtree(CONFIG_DIR)
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    (CONFIG_DIR / "configuration.yaml").write_text(
        yaml.safe_dump(configuration(port, lan), sort_keys=False, allow_unicode=True)
    )
    http_store = CONFIG_DIR / ".storage" / "http"
    if not http_store.exists():
        http_store.parent.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {"server_port": port}
        if not lan:
            settings["server_host"] = ["127.0.0.1"]
        http_store.write_text(
            json.dumps({"version": 1, "key": "http", "data": settings}, indent=2)
        )
    link = CONFIG_DIR / "custom_components" / "local_voice"
    link.parent.mkdir(exist_ok=True)
    if not link.is_symlink():
        # A symlink, so that edits show up after a restart of Home Assistant.
        link.symlink_to(
            os.path.relpath(PROJECT / "custom_components" / "local_voice", link.parent)
        )


def start_hass(port: int) -> subprocess.Popen[bytes]:
    """Start `python -m homeassistant` with its console output in HA_LOG.

    --skip-pip: all requirements are preinstalled by scripts/setup, and Home
    Assistant must never install into the shared venv by itself; a missing one
    shows up as "No module named" in the log instead. It gets SIGTERM, and
    stops as it would under systemd, when the thread that started it ends,
    also when its process is killed before it can stop it.
    """
    if port_in_use(port):
        raise SetupError(f"port {port} is already in use (another Home Assistant?)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["SETUP_PORT"] = str(port)
    command = [sys.executable, "-m", "homeassistant", "--config", str(CONFIG_DIR)]
    with HA_LOG.open("wb") as log:
        return subprocess.Popen(
            [*command, "--skip-pip", "--log-no-color"],
            cwd=DEVELOP,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=end_with_parent(signal.SIGTERM),  # noqa: PLW1509
        )


def stop_hass(hass: subprocess.Popen[bytes]) -> None:
    """Stop Home Assistant the way systemd would: SIGTERM, then SIGKILL."""
    if hass.poll() is None:
        say("Stopping Home Assistant")
        hass.terminate()
        try:
            hass.wait(120)
        except subprocess.TimeoutExpired:
            hass.kill()
            hass.wait()


class Api:
    """Home Assistant's REST and websocket APIs, used as the frontend uses them."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        """Talk to base_url; log in later."""
        self.session = session
        self.base_url = base_url
        self.client_id = f"{base_url}/"
        self.token: str | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 0

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send a JSON request and return the JSON answer; raise unless 200 OK."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(
            method, self.base_url + path, json=body, headers=headers
        ) as response:
            if response.status != 200:
                raise SetupError(
                    f"{method} {path} answered {response.status}: {await response.text()}"
                )
            return await response.json() if response.content_length != 0 else None

    async def get_token(self, code: str) -> None:
        """Exchange an authorization code for an access token."""
        async with self.session.post(
            self.base_url + "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        ) as response:
            if response.status != 200:
                raise SetupError(f"/auth/token answered {response.status}")
            self.token = (await response.json())["access_token"]

    async def login(self) -> str:
        """Log in as the demo user with the login flow; return the auth code."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.client_id}?auth_callback=1",
            },
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {
                "client_id": self.client_id,
                **{k: USER[k] for k in ("username", "password")},
            },
        )
        if result.get("type") != "create_entry":
            raise SetupError(f"cannot log in as {USER['username']}: {result}")
        return str(result["result"])

    async def websocket(self) -> aiohttp.ClientWebSocketResponse:
        """Return the authenticated websocket, connecting once."""
        if self._ws is None:
            self._ws = await self.session.ws_connect(self.base_url + "/api/websocket")
            await self._ws.receive_json()  # auth_required
            await self._ws.send_json({"type": "auth", "access_token": self.token})
            if (answer := await self._ws.receive_json())["type"] != "auth_ok":
                raise SetupError(f"websocket authentication failed: {answer}")
        return self._ws

    def next_id(self) -> int:
        """Return the id of the next websocket message."""
        self._next_id += 1
        return self._next_id

    async def ws(self, command: str, **data: Any) -> Any:
        """Send a websocket command and return its result."""
        await self.websocket()
        assert self._ws is not None
        self._next_id += 1
        await self._ws.send_json({"id": self._next_id, "type": command, **data})
        message = await self._ws.receive_json(timeout=60)
        while message.get("id") != self._next_id:  # skip events, if any
            message = await self._ws.receive_json(timeout=60)
        if not message["success"]:
            raise SetupError(f"{command} failed: {message['error']}")
        return message.get("result")

    async def close(self) -> None:
        """Close the websocket."""
        if self._ws is not None:
            await self._ws.close()


async def wait_for(
    what: str,
    probe: Callable[[], Awaitable[bool]],
    hass: subprocess.Popen[bytes],
    within: float = 300,
) -> None:
    """Poll until probe() is True; fail early if Home Assistant exits."""
    deadline = time.monotonic() + within
    while not await probe():
        if hass.poll() is not None:
            raise SetupError(
                f"Home Assistant exited ({hass.returncode}) before {what}; see {HA_LOG}"
            )
        if time.monotonic() > deadline:
            raise SetupError(f"timed out waiting for {what}; see {HA_LOG}")
        await asyncio.sleep(0.5)


async def onboard(api: Api, hass: subprocess.Popen[bytes]) -> None:
    """Create the demo user and finish onboarding, or log in if it was done."""

    async def http_up() -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with api.session.get(api.base_url + "/manifest.json"):
                return True
        return False

    await wait_for("its web server", http_up, hass)
    async with api.session.get(api.base_url + "/api/onboarding") as response:
        # The onboarding views only exist until onboarding is finished.
        steps = [] if response.status == 404 else await response.json()
    pending = [step["step"] for step in steps if not step["done"]]
    if "user" not in pending:
        say("Already onboarded: logging in as 'demo'")
        await api.get_token(await api.login())
    else:
        say("Onboarding: creating the user 'demo'")
        answer = await api.request(
            "POST",
            "/api/onboarding/users",
            {**USER, "client_id": api.client_id, "language": LANGUAGE},
        )
        await api.get_token(answer["auth_code"])
    bodies = {
        "core_config": {},
        "analytics": {},
        "integration": {
            "client_id": api.client_id,
            "redirect_uri": f"{api.client_id}?auth_callback=1",
        },
    }
    for step, body in bodies.items():
        if step in pending:
            await api.request("POST", f"/api/onboarding/{step}", body)

    async def running() -> bool:
        return bool((await api.request("GET", "/api/config"))["state"] == "RUNNING")

    await wait_for("the state RUNNING", running, hass)


async def remove_onboarding_cloud(api: Api) -> None:
    """Remove the entries onboarding made for internet services.

    They cannot load here and would show up as "Failed to set up" in the demo.
    By the time Local Voice's flow is done, onboarding's flows are long done.
    """
    for entry in await api.request("GET", "/api/config/config_entries/entry"):
        if entry["domain"] in ONBOARDING_CLOUD:
            await api.request(
                "DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}"
            )


async def add_local_voice(api: Api) -> None:
    """Add Local Voice through its config flow, accepting every default."""
    entries = await api.request(
        "GET", "/api/config/config_entries/entry?domain=local_voice"
    )
    if entries:
        say("Local Voice is already set up")
        return
    say("Adding Local Voice through its config flow, with the defaults")
    await complete_flow(
        api, "/api/config/config_entries/flow", {"handler": "local_voice"}, within=60
    )


async def complete_flow(
    api: Api,
    path: str,
    start: dict[str, Any],
    answers: dict[str, dict[str, Any]] | None = None,
    *,
    within: float,
) -> dict[str, Any]:
    """Start a config (or subentry) flow at `path` and go through it to its entry.

    Each form gets its step's `answers`, else its defaults. Raise SetupError
    when a form is refused or the flow ends otherwise.
    """
    result: dict[str, Any] = await api.request("POST", path, start)
    url = f"{path}/{result['flow_id']}"
    deadline = time.monotonic() + within
    while result["type"] in {"form", "progress"} and time.monotonic() < deadline:
        if result["type"] == "progress":
            # The check by ear runs in the background; look again, as the
            # frontend does when the flow reports progress.
            await asyncio.sleep(0.2)
            result = await api.request("GET", url)
            continue
        if result.get("errors"):
            raise SetupError(f"form {result['step_id']} refused: {result['errors']}")
        answer = (answers or {}).get(result["step_id"])
        print(f"    form {result['step_id']}: {'answered' if answer else 'defaults'}")
        result = await api.request("POST", url, answer or {})
    if result["type"] != "create_entry":
        raise SetupError(f"the flow at {path} ended with {result}")
    return result


async def arrange_home(api: Api) -> None:
    """Put the demo entities in their areas and expose exactly EXPOSED to Assist.

    Onboarding already made the areas Kitchen, Living Room and Bedroom; names
    are matched so they are reused. Runs after Local Voice is added so that
    entities it creates are covered too.
    """
    areas = {
        a["name"].casefold(): a["area_id"]
        for a in await api.ws("config/area_registry/list")
    }
    for name, entity_ids in AREAS.items():
        area_id = areas.get(name.casefold())
        if area_id is None:
            area_id = (await api.ws("config/area_registry/create", name=name))[
                "area_id"
            ]
        for entity_id in entity_ids:
            await api.ws(
                "config/entity_registry/update", entity_id=entity_id, area_id=area_id
            )
    everything = [
        state["entity_id"] for state in await api.request("GET", "/api/states")
    ]
    for expose, entity_ids in (
        (True, EXPOSED),
        (False, [e for e in everything if e not in EXPOSED]),
    ):
        await api.ws(
            "homeassistant/expose_entity",
            assistants=["conversation"],
            entity_ids=entity_ids,
            should_expose=expose,
        )


async def spoken_command(api: Api, pcm: bytes) -> dict[str, dict[str, Any]]:
    """Run 16 kHz speech through the preferred pipeline, as the browser does.

    The audio goes in at the pace of a microphone, from the wake word stage to
    text-to-speech; returns the data of each pipeline event by type.
    """
    ws = await api.websocket()
    run_id = api.next_id()
    await ws.send_json(
        {
            "id": run_id,
            "type": "assist_pipeline/run",
            "start_stage": "wake_word",
            "end_stage": "tts",
            "input": {"sample_rate": 16000, "timeout": 10},
        }
    )
    events: dict[str, dict[str, Any]] = {}
    sender: asyncio.Task[None] | None = None

    async def send(handler: int) -> None:
        chunk = 640  # 20 ms
        for start in range(0, len(pcm), chunk):
            await ws.send_bytes(bytes([handler]) + pcm[start : start + chunk])
            await asyncio.sleep(0.02)
        await ws.send_bytes(bytes([handler]))

    try:
        while "run-end" not in events:
            message = await ws.receive_json(timeout=60)
            if message.get("id") != run_id:
                continue
            if message["type"] == "result":
                if not message["success"]:
                    raise SetupError(f"assist_pipeline/run failed: {message['error']}")
                continue
            event = message["event"]
            events[event["type"]] = event.get("data") or {}
            if event["type"] == "run-start":
                handler = event["data"]["runner_data"]["stt_binary_handler_id"]
                sender = asyncio.create_task(send(handler))
            if event["type"] == "error":
                raise SetupError(f"the pipeline failed: {event['data']}")
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    return events


def heard_and_answer(events: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """Return what a run's speech-to-text heard and what the assistant said."""
    heard = events.get("stt-end", {}).get("stt_output", {}).get("text", "")
    answer = (
        events.get("intent-end", {})
        .get("intent_output", {})
        .get("response", {})
        .get("speech", {})
        .get("plain", {})
        .get("speech", "")
    )
    return str(heard), str(answer)


def piper_speech(text: str) -> bytes:
    """Return Piper's speech of `text` as 16 kHz PCM, after half a second of silence."""
    pcm = to_pcm16k(piper_wav(SERVER_PORTS["piper"], text))
    silence = bytes(16000)  # 0.5 s
    return silence + pcm + 2 * silence


def interrupt(signum: int, frame: object) -> NoReturn:
    """Turn SIGTERM into KeyboardInterrupt so that cleanup runs."""
    raise KeyboardInterrupt
