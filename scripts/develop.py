"""Run a real Home Assistant with Local Voice and a demo home, set up like a newcomer would.

Run it through scripts/develop, which prepares the environment first and runs
this module as `python -m scripts.develop` from the project folder:

    scripts/develop            set up, verify, then run until Ctrl-C or SIGTERM
    scripts/develop --check    set up, verify, stop; exit 0 only if it all works
    scripts/develop --keep     reuse .develop/config (users, entries) of the last run
    scripts/develop --port N   serve Home Assistant on port N instead of 8123
    scripts/develop --lan      serve it on every interface, not only 127.0.0.1

Everything goes through Home Assistant's public REST and websocket APIs, as
the frontend does: onboarding, areas, exposure, and Local Voice's own config
flow with its default answers. So a passing --check means a newcomer who
installs the integration and clicks through gets a working voice assistant.
Logs end up in .develop/ (home-assistant.log, servers/).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import aiohttp

from scripts.demo_home import EXPOSED
from scripts.home_assistant import (
    DEVELOP,
    HA_LOG,
    LANGUAGE,
    SERVER_LOGS,
    SERVER_PORTS,
    USER,
    Api,
    SetupError,
    add_local_voice,
    arrange_home,
    heard_and_answer,
    interrupt,
    lan_address,
    onboard,
    piper_speech,
    port_in_use,
    prepare_config,
    remove_onboarding_cloud,
    say,
    spoken_command,
    start_hass,
    stop_hass,
    wait_for,
)
from scripts.servers import launch

# What each server must offer in its Describe answer to be reused.
SERVER_SERVICE = {"piper": "tts", "whisper": "asr", "wakeword": "wake"}
# The modules that onboarding's internet services (home_assistant.ONBOARDING_CLOUD)
# miss: expected in the log; any other missing module is a failure.
EXPECTED_MISSING = {"gtts", "metno", "radios"}


def reusable(name: str, port: int) -> bool:
    """Return True if a fitting Wyoming server already listens on `port`."""
    info = launch.describe(port)
    if info is not None:
        if not info.get(SERVER_SERVICE[name]):
            raise SetupError(
                f"port {port} has a Wyoming server without {name}'s service"
            )
        say(f"Reusing the Wyoming server on port {port} as {name}")
        return True
    if port_in_use(port):
        raise SetupError(f"port {port} is taken by something that is not Wyoming")
    return False


def start_servers() -> list[launch.Server]:
    """Start the speech servers on their usual ports; reuse any already there."""
    wanted = [name for name, port in SERVER_PORTS.items() if not reusable(name, port)]
    commands = launch.commands(SERVER_LOGS)
    started: list[launch.Server] = []
    try:
        started.extend(
            launch.start(name, commands[name], SERVER_PORTS[name], SERVER_LOGS)
            for name in wanted
        )
        launch.wait_ready(started)
    except BaseException:
        for server in started:
            server.stop()
        raise
    return started


async def verify(api: Api, hass: subprocess.Popen[bytes]) -> None:
    """Check the entry, the preferred pipeline, the exposure and a typed command."""
    entries = await api.request(
        "GET", "/api/config/config_entries/entry?domain=local_voice"
    )
    if [entry["state"] for entry in entries] != ["loaded"]:
        raise SetupError(f"Local Voice is not loaded: {entries}")
    exposed = await api.ws("homeassistant/expose_entity/list")
    exposed_ids = {
        entity_id
        for entity_id, assistants in exposed["exposed_entities"].items()
        if assistants.get("conversation")
    }
    if exposed_ids != set(EXPOSED):
        raise SetupError(f"exposed to Assist: {sorted(exposed_ids)}, not EXPOSED")
    pipelines = await api.ws("assist_pipeline/pipeline/list")
    preferred = next(
        p for p in pipelines["pipelines"] if p["id"] == pipelines["preferred_pipeline"]
    )
    engines = {
        k: preferred.get(k) for k in ("stt_engine", "tts_engine", "wake_word_entity")
    }
    if preferred["name"] != "Local Voice" or not all(engines.values()):
        raise SetupError(f"the preferred pipeline is not Local Voice's: {preferred}")
    say(
        f"Preferred pipeline: {preferred['name']} ({', '.join(map(str, engines.values()))})"
    )
    for text, state in (
        ("turn on the kitchen light", "on"),
        ("turn off the kitchen light", "off"),
    ):
        answer = await api.request(
            "POST", "/api/conversation/process", {"text": text, "language": LANGUAGE}
        )
        speech = answer["response"]["speech"]["plain"]["speech"]
        print(f"    '{text}' -> '{speech}'")

        async def switched(state: str = state) -> bool:
            light = await api.request("GET", "/api/states/light.kitchen_light")
            return bool(light["state"] == state)

        await wait_for(f"light.kitchen_light to be {state}", switched, hass, within=10)


async def verify_speech(api: Api, hass: subprocess.Popen[bytes]) -> None:
    """'Alexa, turn on the kitchen light', spoken, does it and is answered aloud."""
    events = await spoken_command(
        api, piper_speech("Alexa, turn on the kitchen light.")
    )
    wake = events.get("wake_word-end", {}).get("wake_word_output", {})
    heard, answer = heard_and_answer(events)
    print(
        f"    spoken 'Alexa, turn on the kitchen light' -> wake word "
        f"{wake.get('wake_word_id')!r}, heard {heard!r}, answered {answer!r}"
    )
    if wake.get("wake_word_id") != "alexa":
        raise SetupError(f"the wake word was not detected: {events}")
    light = await api.request("GET", "/api/states/light.kitchen_light")
    if light["state"] != "on":
        raise SetupError(f"the spoken command did not turn the light on: {events}")
    url = events.get("tts-end", {}).get("tts_output", {}).get("url")
    if not url:
        raise SetupError(f"no spoken answer: {events}")
    async with api.session.get(api.base_url + url) as response:
        audio = await response.read()
        if response.status != 200 or len(audio) < 1000:
            raise SetupError(f"the spoken answer {url} answered {response.status}")
    print(f"    spoken answer: {len(audio)} bytes of {response.content_type}")
    await api.request(
        "POST", "/api/conversation/process", {"text": "turn off the kitchen light"}
    )


def missing_modules() -> set[str]:
    """Return the Python modules the HA log says are missing, bar the expected."""
    text = HA_LOG.read_text(errors="replace") if HA_LOG.exists() else ""
    return set(re.findall(r"No module named '([^']+)'", text)) - EXPECTED_MISSING


def print_welcome(port: int, lan: bool) -> None:
    """Tell the user where to go and what to try."""
    urls = [f"http://127.0.0.1:{port}"]
    if lan and (address := lan_address()):
        urls.append(f"http://{address}:{port}")
    print(
        "\n"
        f"  Home Assistant with Local Voice is running: {'  or  '.join(urls)}\n"
        f"  Username: {USER['username']}\n"
        f"  Password: {USER['password']}\n"
        "  Open Assist (top right) and type or click the microphone: "
        "try 'turn on the kitchen light'\n"
        "  (browsers allow the microphone only on 127.0.0.1/localhost or HTTPS)\n"
        f"  Logs: {HA_LOG}, {SERVER_LOGS}/\n"
        "  Press Ctrl-C to stop.\n",
        flush=True,
    )


async def run(args: argparse.Namespace, hass: subprocess.Popen[bytes]) -> None:
    """Set up and verify Home Assistant, then wait for SIGINT/SIGTERM unless --check."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=300)
    ) as session:
        api = Api(session, f"http://127.0.0.1:{args.port}")
        try:
            await onboard(api, hass)
            await add_local_voice(api)
            await remove_onboarding_cloud(api)
            await arrange_home(api)
            await verify(api, hass)
            await verify_speech(api, hass)
        finally:
            await api.close()
    say("Verified: the pipeline, a typed command and a spoken one work")
    if args.check:
        return
    print_welcome(args.port, args.lan)
    while hass.poll() is None:  # noqa: ASYNC110 (a Popen has no awaitable exit)
        await asyncio.sleep(1)
    raise SetupError(f"Home Assistant exited ({hass.returncode}); see {HA_LOG}")


def main() -> int:
    """Run everything; stop what was started, whatever happens."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="verify, then stop")
    parser.add_argument("--keep", action="store_true", help="keep .develop/config")
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant's port")
    parser.add_argument(
        "--lan",
        action="store_true",
        help="serve Home Assistant on every interface, not only 127.0.0.1",
    )
    # scripts/develop forwards SIGTERM to the pid written here.
    parser.add_argument("--pid-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pid_file:
        args.pid_file.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    servers: list[launch.Server] = []
    hass: subprocess.Popen[bytes] | None = None
    status = 0
    try:
        DEVELOP.mkdir(exist_ok=True)
        prepare_config(args.keep, args.port, args.lan)
        say("Starting the speech servers")
        servers = start_servers()
        say(f"Starting Home Assistant on port {args.port} (log: {HA_LOG})")
        hass = start_hass(args.port)
        asyncio.run(run(args, hass))
    except SetupError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt, asyncio.CancelledError:
        status = 130 if args.check else 0
    finally:
        # No second signal may cut the cleanup short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if hass is not None:
            stop_hass(hass)
        for server in servers:
            server.stop()
        if args.pid_file:
            args.pid_file.unlink(missing_ok=True)
    if missing := missing_modules():
        print(
            f"ERROR: {HA_LOG} says these modules are missing: {', '.join(sorted(missing))};"
            " add the component that needs them to scripts/ha_components.txt",
            file=sys.stderr,
        )
        status = status or 1
    say(f"Done in {time.monotonic() - started:.0f} s, exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
