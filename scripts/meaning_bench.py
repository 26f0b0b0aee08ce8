"""Speech-to-text by meaning, live: core against Local Voice's fallback modes.

Run through scripts/meaning_bench, which prepares the environment and keeps
Home Assistant's configuration in .bench/meaning/ (LOCAL_VOICE_DEVELOP_DIR):

    scripts/meaning_bench                         every command, voice and room
    scripts/meaning_bench --sentences 2 --voices piper-joe --rooms clean
    scripts/meaning_bench --json FILE             where the runs go
                                                  (default .bench/meaning.json)

The first speech-to-text server mishears: a proxy on 10300
(tests/mishearing_proxy.py) sits in front of a real faster-whisper and swaps
one content word in half of the transcripts, chosen by the transcript's own
words, so every side meets the same mishearings. A second real
faster-whisper, its own process and data dir, listens behind 10900, a port
Local Voice's scan tries. Piper (10200) and the wake word server (10400) are
the real ones on their usual ports; each Whisper has a tap in front (see
scripts/bench.py) that notes what it heard.

One real `hass`, onboarded, with the demo home, and four sides:

- core: Home Assistant's own `wyoming` integration over the mishearing
  server, Piper and the wake word (core takes one speech-to-text engine);
- failure, meaning, together: three Local Voice assistants over the same
  chain [10300, 10900], whose `stt_fallback` differs. "meaning" is the one
  Local Voice's config flow makes with every default; the other two are
  added through the assistant subentry flow.

Every command of the demo home, in each voice, clean and in a noisy room,
goes through each side's pipeline as a live microphone sends it
(scripts/bench.py): sides in a rotating order, item by item. Before each run
the home goes back to how it started and the command's scene is set. A run
is:

- right: the home is as the command expects and the agent did not ask;
- asked: the agent asked a question (intent-end continue_conversation); the
  home must then be unchanged;
- wrong: anything changed that the command did not ask for (an exposed demo
  entity, beyond what follows from the expected change), or the expected
  entity went to another state. Never hidden: each one is printed;
- failed: anything else (nothing done, no answer, an error).

Printed per side, clean, noisy and together: the outcomes; end of speech to
stt-end and to intent-end (median, p95); for Local Voice the time the chain
added after the first server's answer (`stt_added_ms` of the
`local_voice_command` event), over all commands and over those that went
on to the second server (`stt_hops` > 0).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
import contextlib
from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

from scripts import bench, home_assistant
from scripts.bench import BENCH_VOICES, HOST, LEAD_SECONDS, Item, Tap
from scripts.commands import COMMANDS, SpokenCommand
from scripts.demo_home import COUPLED, EXPOSED
from scripts.figures import percentile
from scripts.hearing import VOICES, noisy
from scripts.servers import launch
from scripts.speech import SpeechMaker, silence
from tests.mishearing_proxy import MishearingProxy

DEVELOP = home_assistant.DEVELOP
PROJECT = home_assistant.PROJECT
SPEECH_CACHE = PROJECT / ".bench" / "speech"
DEFAULT_JSON = PROJECT / ".bench" / "meaning.json"

PIPER_PORT = 10200
PROXY_PORT = 10300
WAKE_PORT = 10400
SECOND_PORT = 10900
USUAL_PORTS = {
    "piper": PIPER_PORT,
    "mishearing proxy": PROXY_PORT,
    "wake word": WAKE_PORT,
    "second whisper": SECOND_PORT,
}
MISHEAR_RATE = 0.5
ROOMS = ("clean", "noisy")
# Room sound after the speech: the reverb's tail and the noise go on a
# little before the microphone's digital silence.
NOISY_TAIL_SECONDS = 0.6

CORE = "core"
FAILURE = "failure"
MEANING = "meaning"
TOGETHER = "together"
SIDES = (CORE, FAILURE, MEANING, TOGETHER)
LOCAL_SIDES = (FAILURE, MEANING, TOGETHER)
# Assistants added next to the one the config flow makes ("meaning").
ADDED_ASSISTANTS = {FAILURE: "LV failure", TOGETHER: "LV together"}

RIGHT = "right"
ASKED = "asked"
WRONG = "wrong"
FAILED = "failed"
OUTCOMES = (RIGHT, ASKED, WRONG, FAILED)

# What a run's before/after picture of the home holds of each entity.
WATCHED_ATTRIBUTES = ("current_position", "temperature")
# How long the command event may take after a run ends (it waits for the
# answer's first audio, which the bench fetches).
EVENT_WAIT_SECONDS = 5.0
# Template entities follow their helpers a moment after a call returns.
SETTLE_SECONDS = 0.3
# Access tokens live 30 minutes: a new one after 20.
TOKEN_RENEW_SECONDS = 20 * 60

type Picture = dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Case:
    """One recording: a command in a voice and a room."""

    item: Item
    voice: str
    room: str


@dataclass
class Run:
    """One case through one side: what happened and how long it took."""

    side: str
    item: str
    command: str
    voice: str
    room: str
    outcome: str = FAILED
    heard: str = ""
    answer: str = ""
    asked: bool = False
    judged_ok: bool = False
    error: str | None = None
    # From the end of speech, in seconds.
    stt: float | None = None
    intent: float | None = None
    vad_end: float | None = None
    # The host's load (1 minute average) as the run ended.
    load: float | None = None
    # Exposed entities that changed: entity id -> [before, after].
    changed: dict[str, list[Any]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    # What the agent said it acted on (intent-end), and how it answered.
    acted: list[str] = field(default_factory=list)
    response_type: str | None = None
    # Local Voice's command event.
    stt_hops: int | None = None
    stt_added_ms: int | None = None
    event: dict[str, Any] | None = None
    # What each Whisper heard during the run, and what the proxy changed.
    first_heard: list[str] = field(default_factory=list)
    second_heard: list[str] = field(default_factory=list)
    misheard: list[list[str]] = field(default_factory=list)
    # Each request to a Whisper during the run, times from the end of speech.
    requests: list[dict[str, Any]] = field(default_factory=list)


def make_cases(
    maker: SpeechMaker, sentences: int, voices: list[str], rooms: list[str]
) -> list[Case]:
    """Return every command (the first `sentences`) in every voice and room."""
    cases: list[Case] = []
    for command in COMMANDS[:sentences]:
        for voice in voices:
            clean = VOICES[voice](maker, command.text)
            speech_end = LEAD_SECONDS + clean.end()
            for room in rooms:
                recording = silence(LEAD_SECONDS) + clean
                if room == "noisy":
                    recording = noisy(recording + silence(NOISY_TAIL_SECONDS))
                number = len(cases) + 1
                cases.append(
                    Case(
                        Item(
                            name=f"{number:03} {voice} {room}: {command.text}",
                            command=command,
                            speech=recording,
                            speech_end=speech_end,
                        ),
                        voice,
                        room,
                    )
                )
    return cases


# --- the home: its picture, putting it back, judging a run


async def picture(api: home_assistant.Api) -> Picture:
    """Return the state (and the attributes that matter) of each exposed entity."""
    states = await api.request("GET", "/api/states")
    found: Picture = {}
    for state in states:
        if state["entity_id"] in EXPOSED:
            attributes = state.get("attributes", {})
            found[state["entity_id"]] = (
                state["state"],
                *(attributes.get(key) for key in WATCHED_ATTRIBUTES),
            )
    return found


async def call(
    api: home_assistant.Api, domain: str, service: str, entity_id: str, **data: Any
) -> None:
    """Call a service on one entity."""
    await api.request(
        "POST", f"/api/services/{domain}/{service}", {"entity_id": entity_id, **data}
    )


async def restore(api: home_assistant.Api, baseline: Picture) -> list[str]:
    """Put every exposed entity back as it was at the start; return what moved."""
    now = await picture(api)
    moved = [e for e in baseline if now.get(e) != baseline[e]]
    # The thermostat first: it switches the heater.
    for entity_id in sorted(moved, key=lambda e: not e.startswith("climate.")):
        state, position, temperature = baseline[entity_id]
        domain = entity_id.split(".")[0]
        if domain in ("light", "switch"):
            await call(api, domain, f"turn_{state}", entity_id)
        elif domain == "lock":
            await call(
                api, domain, "lock" if state == "locked" else "unlock", entity_id
            )
        elif domain == "cover" and position is not None:
            await call(api, domain, "set_cover_position", entity_id, position=position)
        elif domain == "climate" and temperature is not None:
            await call(
                api, domain, "set_temperature", entity_id, temperature=temperature
            )
    return moved


def classify(
    command: SpokenCommand,
    before: Picture,
    after: Picture,
    *,
    asked: bool,
    judged_ok: bool,
    acted: list[str],
) -> tuple[str, dict[str, list[Any]], list[str]]:
    """Return the outcome, what changed and what should not have been touched.

    Besides what changed, what the agent says it acted on counts: an action
    on another entity, or on the expected one without the expected result,
    is wrong even when it changed nothing to see (locking a locked door).
    """
    changed = {
        entity_id: [list(before.get(entity_id, ())), list(value)]
        for entity_id, value in after.items()
        if before.get(entity_id) != value
    }
    expected = command.expect.entity_id
    allowed = (
        {expected, *COUPLED.get(expected, frozenset())}
        if expected is not None
        else set()
    )
    unexpected = [e for e in changed if e not in allowed]
    unexpected += [f"acted on {e}" for e in acted if e not in allowed]
    if not judged_ok and expected is not None:
        if expected in changed:
            unexpected.append(expected)
        elif expected in acted:
            unexpected.append(f"acted on {expected}")
    if unexpected:
        return WRONG, changed, unexpected
    if asked:
        return ASKED, changed, []
    if judged_ok:
        return RIGHT, changed, []
    return FAILED, changed, []


# --- Home Assistant's APIs for longer than an access token lives


class LongApi(home_assistant.Api):
    """The APIs, logging in again before the access token runs out.

    Home Assistant's access tokens last 30 minutes; the bench runs longer.
    The websockets stay logged in once they are.
    """

    renewed: float = 0.0

    async def get_token(self, code: str) -> None:
        """Exchange the code and note when."""
        await super().get_token(code)
        self.renewed = time.monotonic()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send a request, with a fresh token when the old one is getting old."""
        if self.token and time.monotonic() - self.renewed > TOKEN_RENEW_SECONDS:
            # Noted first: logging in makes requests of its own.
            self.renewed = time.monotonic()
            await self.get_token(await self.login())
        return await super().request(method, path, body)


# --- Local Voice's command events


class CommandEvents:
    """`local_voice_command` events, on a websocket of their own."""

    def __init__(self, api: home_assistant.Api) -> None:
        """Listen later."""
        self.api = api
        self.events: list[dict[str, Any]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        """Connect, log in and subscribe."""
        ws = await self.api.session.ws_connect(self.api.base_url + "/api/websocket")
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": self.api.token})
        if (answer := await ws.receive_json())["type"] != "auth_ok":
            raise home_assistant.SetupError(f"event websocket: {answer}")
        await ws.send_json(
            {"id": 1, "type": "subscribe_events", "event_type": "local_voice_command"}
        )
        if not (await ws.receive_json()).get("success"):
            raise home_assistant.SetupError("cannot subscribe to local_voice_command")
        self._ws = ws
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("type") == "event":
                self.events.append(data["event"]["data"])
                self._arrived.set()

    async def next_for(
        self, pipeline_id: str, start: int, within: float
    ) -> dict[str, Any] | None:
        """Return the first event from index `start` for the pipeline, waiting."""
        deadline = time.monotonic() + within
        while True:
            for event in self.events[start:]:
                if event.get("pipeline_id") == pipeline_id:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def stop(self) -> None:
        """Close the websocket."""
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Bench:
    """Everything a run needs: the API, the sides' pipelines, the taps."""

    api: home_assistant.Api
    pipelines: dict[str, str]
    baseline: Picture
    events: CommandEvents
    proxy: MishearingProxy
    taps: dict[str, Tap]

    async def run(self, case: Case, side: str) -> Run:
        """Put the home back, set the scene, speak, and judge what happened."""
        item = case.item
        command = item.command
        result = Run(side, item.name, command.text, case.voice, case.room)
        if moved := await restore(self.api, self.baseline):
            await asyncio.sleep(SETTLE_SECONDS)
            if (still := await picture(self.api)) != self.baseline:
                print(f"    ! home not back after {moved}: {still}", flush=True)
        await bench.set_scene(self.api, command)
        await asyncio.sleep(SETTLE_SECONDS)
        before = await picture(self.api)
        first_event = len(self.events.events)
        changes = len(self.proxy.changes)
        started = time.monotonic()
        live = await bench.run_live(self.api, item, self.pipelines[side])
        data, arrived, speech_end = live.data, live.arrived, live.speech_end
        result.error = live.error
        ended = time.monotonic()
        result.load = os.getloadavg()[0]
        if side != CORE:
            event = await self.events.next_for(
                self.pipelines[side], first_event, EVENT_WAIT_SECONDS
            )
            if event is not None:
                result.event = event
                result.stt_hops = event.get("stt_hops")
                result.stt_added_ms = event.get("stt_added_ms")
        await asyncio.sleep(SETTLE_SECONDS)
        after = await picture(self.api)
        if speech_end is not None:
            if "stt-end" in arrived:
                result.stt = arrived["stt-end"] - speech_end
            if "intent-end" in arrived:
                result.intent = arrived["intent-end"] - speech_end
            if "stt-vad-end" in arrived:
                result.vad_end = arrived["stt-vad-end"] - speech_end
        result.heard, result.answer = home_assistant.heard_and_answer(data)
        output = data.get("intent-end", {}).get("intent_output") or {}
        result.asked = bool(output.get("continue_conversation"))
        if result.error is None:
            result.judged_ok = await bench.judge(self.api, command, result.answer)
        response = output.get("response") or {}
        result.response_type = response.get("response_type")
        if result.response_type == "action_done":
            result.acted = [
                str(target["id"])
                for target in (response.get("data") or {}).get("success") or []
                if isinstance(target, dict) and target.get("type") == "entity"
            ]
        result.outcome, result.changed, result.unexpected = classify(
            command,
            before,
            after,
            asked=result.asked,
            judged_ok=result.judged_ok,
            acted=result.acted,
        )
        result.misheard = [list(pair) for pair in self.proxy.changes[changes:]]
        result.first_heard = self._heard("first", started, ended)
        result.second_heard = self._heard("second", started, ended)
        if speech_end is not None:
            result.requests = self._requests(started, ended, speech_end)
        return result

    def _heard(self, tap: str, started: float, ended: float) -> list[str]:
        return [
            passage.text
            for passage in self.taps[tap].passages
            if started <= passage.opened <= ended and passage.text is not None
        ]

    def _requests(
        self, started: float, ended: float, speech_end: float
    ) -> list[dict[str, Any]]:
        """Return each Whisper request of the run: when it went, when it ended."""

        def since(moment: float | None) -> float | None:
            return None if moment is None else round(moment - speech_end, 3)

        return [
            {
                "server": name,
                "opened": since(passage.opened),
                "audio_stop": since(passage.audio_stop),
                "transcript": since(passage.transcript),
                "text": passage.text,
            }
            for name, tap in self.taps.items()
            for passage in tap.passages
            if started <= passage.opened <= ended and passage.audio_stop is not None
        ]


# --- setting up the sides


async def local_voice_entry(api: home_assistant.Api) -> str:
    """Return the id of Local Voice's config entry."""
    entries = await api.request(
        "GET", "/api/config/config_entries/entry?domain=local_voice"
    )
    if not entries:
        raise home_assistant.SetupError("Local Voice has no config entry")
    return str(entries[0]["entry_id"])


async def diagnostics(api: home_assistant.Api, entry_id: str) -> dict[str, Any]:
    """Return Local Voice's diagnostics."""
    report = await api.request("GET", f"/api/diagnostics/config_entry/{entry_id}")
    return dict(report["data"])


async def add_assistant(
    api: home_assistant.Api, entry_id: str, name: str, fallback: str
) -> None:
    """Add an assistant through the subentry flow: defaults but name and fallback."""
    await home_assistant.complete_flow(
        api,
        "/api/config/config_entries/subentries/flow",
        {"handler": [entry_id, "assistant"]},
        {"assistant": {"name": name, "stt_fallback": fallback, "preferred": False}},
        within=120,
    )
    await wait_loaded(api)


async def wait_loaded(api: home_assistant.Api) -> None:
    """Wait until Local Voice's entry is loaded again (a new subentry reloads it)."""
    deadline = time.monotonic() + 60
    while True:
        entries = await api.request(
            "GET", "/api/config/config_entries/entry?domain=local_voice"
        )
        if entries and entries[0]["state"] == "loaded":
            return
        if time.monotonic() > deadline:
            raise home_assistant.SetupError(f"Local Voice not loaded: {entries}")
        await asyncio.sleep(0.3)


async def chains(api: home_assistant.Api, entry_id: str) -> dict[str, list[int]]:
    """Return each assistant's speech-to-text ports by its stt_fallback."""
    report = await diagnostics(api, entry_id)
    ports = {p["provider"]: p["port"] for p in report["providers"]}
    return {
        assistant["settings"]["stt_fallback"]: [
            ports[p] for p in assistant["settings"]["stt_providers"]
        ]
        for assistant in report["assistants"]
    }


async def wait_for_pipelines(
    api: home_assistant.Api, names: list[str]
) -> dict[str, str]:
    """Return the ids of the pipelines with these names, waiting for them."""
    deadline = time.monotonic() + 60
    while True:
        listed = await api.ws("assist_pipeline/pipeline/list")
        found = {p["name"]: p for p in listed["pipelines"]}
        if all(name in found for name in names):
            return {name: str(found[name]["id"]) for name in names}
        if time.monotonic() > deadline:
            raise home_assistant.SetupError(f"no pipelines {names}: {sorted(found)}")
        await asyncio.sleep(0.5)


async def set_up(
    api: home_assistant.Api, hass: subprocess.Popen[bytes]
) -> tuple[dict[str, str], dict[str, list[int]]]:
    """Onboard, add Local Voice and core's wyoming; return the sides' pipelines."""
    await home_assistant.onboard(api, hass)
    await home_assistant.add_local_voice(api)
    await home_assistant.remove_onboarding_cloud(api)
    entry_id = await local_voice_entry(api)
    first = await chains(api, entry_id)
    if first != {MEANING: [PROXY_PORT, SECOND_PORT]}:
        raise home_assistant.SetupError(
            f"the default assistant's chain is {first}, not meaning over "
            f"[{PROXY_PORT}, {SECOND_PORT}]"
        )
    listed = await api.ws("assist_pipeline/pipeline/list")
    meaning = next(
        p for p in listed["pipelines"] if p["id"] == listed["preferred_pipeline"]
    )
    for side, name in ADDED_ASSISTANTS.items():
        home_assistant.say(f"Adding the assistant {name!r} (stt_fallback {side})")
        await add_assistant(api, entry_id, name, side)
    ids = await wait_for_pipelines(api, list(ADDED_ASSISTANTS.values()))
    pipelines = {
        MEANING: str(meaning["id"]),
        **{side: ids[name] for side, name in ADDED_ASSISTANTS.items()},
    }
    home_assistant.say("Adding Home Assistant's wyoming integration (core)")
    pipelines[CORE] = await bench.add_core_wyoming(api, meaning)
    await home_assistant.arrange_home(api)
    found = await chains(api, entry_id)
    wanted = {side: [PROXY_PORT, SECOND_PORT] for side in LOCAL_SIDES}
    if found != wanted:
        raise home_assistant.SetupError(f"the assistants' chains are {found}")
    return pipelines, found


# --- figures


def spread(values: list[float]) -> dict[str, float] | None:
    """Return the median, the 95th percentile and the count, or None."""
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "p95": percentile(values, 0.95),
        "n": len(values),
    }


def figures(runs: list[Run]) -> dict[str, Any]:
    """Return outcomes and times of a group of runs."""
    counts = Counter(r.outcome for r in runs)
    hopped = [r for r in runs if r.stt_hops]
    return {
        "runs": len(runs),
        **{outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
        "stt_s": spread([r.stt for r in runs if r.stt is not None]),
        "intent_s": spread([r.intent for r in runs if r.intent is not None]),
        "added_ms": spread(
            [float(r.stt_added_ms) for r in runs if r.stt_added_ms is not None]
        ),
        "hopped": len(hopped),
        "added_ms_hopped": spread(
            [float(r.stt_added_ms) for r in hopped if r.stt_added_ms is not None]
        ),
        "no_event": sum(r.side != CORE and r.event is None for r in runs),
    }


def summarize(runs: list[Run], rooms: list[str], sides: list[str]) -> dict[str, Any]:
    """Return the figures per side: per room and over all."""
    summary: dict[str, Any] = {}
    for side in sides:
        mine = [r for r in runs if r.side == side]
        summary[side] = {
            **{room: figures([r for r in mine if r.room == room]) for room in rooms},
            "total": figures(mine),
        }
    by_item: dict[str, dict[str, Run]] = {}
    for run in runs:
        by_item.setdefault(run.item, {})[run.side] = run
    pairs: dict[str, dict[str, int]] = {}
    for a, b in ((MEANING, FAILURE), (TOGETHER, FAILURE), (MEANING, CORE)):
        if a not in sides or b not in sides:
            continue
        won = lost = 0
        for pair in by_item.values():
            if a in pair and b in pair:
                a_right = pair[a].outcome == RIGHT
                b_right = pair[b].outcome == RIGHT
                won += a_right and not b_right
                lost += b_right and not a_right
        pairs[f"{a} vs {b}"] = {"won": won, "lost": lost}
    summary["pairs"] = pairs
    return summary


def _percent(part: int, whole: int) -> str:
    return f"{part:3d} {100 * part / whole:3.0f}%" if whole else f"{part:3d}   -%"


def _ms(figure: dict[str, float] | None, scale: float = 1000.0) -> str:
    if figure is None:
        return "     -     -"
    return f"{figure['median'] * scale:6.0f}{figure['p95'] * scale:6.0f}"


def table(summary: dict[str, Any], rooms: list[str], sides: list[str]) -> str:
    """Return the figures as a text table."""
    spread_head = f"{'median':>6}{'p95':>6}"
    lines = [
        f"{'side':<9} {'room':<7} {'runs':>4}  "
        + "  ".join(f"{outcome:>8}" for outcome in OUTCOMES)
        + f"  {'->stt-end ms':>12} {'->intent ms':>12}  {'added ms':>12}"
        + f"   {'hops':>4}  {'added if hop':>12}",
        " " * 62
        + f"  {spread_head} {spread_head}  {spread_head}"
        + " " * 9
        + spread_head,
    ]
    for side in sides:
        for room in (*rooms, "total"):
            f = summary[side][room]
            n = f["runs"]
            local = side != CORE
            lines.append(
                f"{side:<9} {room:<7} {n:4d}  "
                + "  ".join(_percent(f[o], n) for o in OUTCOMES)
                + f"  {_ms(f['stt_s'])} {_ms(f['intent_s'])}"
                + (
                    f"  {_ms(f['added_ms'], 1.0)}   {f['hopped']:4d}  "
                    f"{_ms(f['added_ms_hopped'], 1.0)}"
                    if local
                    else ""
                )
            )
        lines.append("")
    for pair, counts in summary["pairs"].items():
        lines.append(
            f"{pair}: right where the other was not {counts['won']}, "
            f"the other way round {counts['lost']}"
        )
    missing = {
        side: summary[side]["total"]["no_event"]
        for side in sides
        if side != CORE and summary[side]["total"]["no_event"]
    }
    if missing:
        lines.append(f"runs without a local_voice_command event: {missing}")
    return "\n".join(lines)


def details(runs: list[Run]) -> str:
    """Return every wrong run in full, and the asked runs by command and side."""
    lines: list[str] = []
    for run in runs:
        if run.outcome == WRONG:
            lines.append(
                f"WRONG [{run.side}] {run.item}\n"
                f"    heard {run.heard!r}; answered {run.answer!r}\n"
                f"    first server {run.first_heard}, second {run.second_heard}, "
                f"misheard {run.misheard}\n"
                f"    changed {run.changed}; acted on {run.acted}; "
                f"not asked for: {run.unexpected}"
            )
        elif run.outcome == ASKED and run.changed:
            lines.append(
                f"ASKED BUT CHANGED [{run.side}] {run.item}: heard {run.heard!r}, "
                f"changed {run.changed}"
            )
    asked = Counter((r.command, r.side) for r in runs if r.outcome == ASKED)
    if asked:
        lines.append("Asked (command, side: runs):")
        lines.extend(
            f"    {command} [{side}]: {n}"
            for (command, side), n in sorted(asked.items())
        )
    return "\n".join(lines)


def _line(run: Run) -> str:
    mark = {RIGHT: "ok   ", ASKED: "ASKED", WRONG: "WRONG", FAILED: "fail "}[
        run.outcome
    ]
    stt = f"{run.stt * 1000:5.0f}" if run.stt is not None else "   --"
    hops = (
        "" if run.stt_hops is None else f" hops {run.stt_hops} +{run.stt_added_ms} ms"
    )
    misheard = " (misheard)" if run.misheard else ""
    return f"      {run.side:<9}{mark} stt {stt} ms{hops} {run.heard!r}{misheard}"


# --- the whole run


async def run_bench(
    args: argparse.Namespace,
    hass: subprocess.Popen[bytes],
    proxy: MishearingProxy,
    taps: dict[str, Tap],
) -> dict[str, Any]:
    """Set up the sides, run every case through each, return the figures."""
    SPEECH_CACHE.mkdir(parents=True, exist_ok=True)
    maker = SpeechMaker(PIPER_PORT, SPEECH_CACHE)
    runs: list[Run] = []
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=300)
    ) as session:
        api = LongApi(session, f"http://{HOST}:{args.port}")
        events = CommandEvents(api)
        try:
            pipelines, found = await set_up(api, hass)
            home_assistant.say(
                f"Pipelines: {pipelines}; Local Voice chains by fallback: {found}"
            )
            if args.debug:
                await api.request(
                    "POST",
                    "/api/services/logger/set_level",
                    {"custom_components.local_voice": "debug"},
                )
            await events.start()
            cases = await asyncio.to_thread(
                make_cases, maker, args.sentences, args.voices, args.rooms
            )
            baseline = await picture(api)
            runner = Bench(api, pipelines, baseline, events, proxy, taps)
            sides = [side for side in SIDES if side in args.sides]
            home_assistant.say(f"{len(cases)} recordings x sides {sides}, in turn")
            began = time.monotonic()
            load_before = os.getloadavg()
            for n, case in enumerate(cases):
                turn = n % len(sides)
                order = sides[turn:] + sides[:turn]
                lines = [f"  {case.item.name} ({n + 1}/{len(cases)})"]
                for side in order:
                    run = await runner.run(case, side)
                    runs.append(run)
                    lines.append(_line(run))
                    if run.outcome == WRONG:
                        lines.append(f"        not asked for: {run.unexpected}")
                    await asyncio.sleep(0.1)
                print("\n".join(lines), flush=True)
                # Kept as it goes: a run that breaks off keeps what it has.
                args.json.write_text(
                    json.dumps({"partial": True, "runs": [asdict(r) for r in runs]})
                )
            wall = time.monotonic() - began
        finally:
            await events.stop()
            await api.close()
    summary = summarize(runs, args.rooms, sides)
    summary["setup"] = {
        "pipelines": pipelines,
        "chains": found,
        "mishear_rate": args.rate,
        "seed": args.seed,
        "sentences": args.sentences,
        "voices": args.voices,
        "rooms": args.rooms,
        "sides": sides,
        "run_seconds": round(wall, 1),
        "proxy_changes": len(proxy.changes),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    summary["runs"] = [asdict(r) for r in runs]
    return summary


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, the proxy, the taps and Home Assistant; run; stop."""
    logs = home_assistant.SERVER_LOGS
    logs.mkdir(parents=True, exist_ok=True)
    ports = {
        "piper": PIPER_PORT,
        "whisper": launch.free_port(),
        "wakeword": WAKE_PORT,
    }
    second_port = launch.free_port()
    first_tap_port = launch.free_port()
    # On this thread: a server ends with the thread that started it.
    servers = launch.start_all(logs, ports)
    taps = {
        "first": Tap("first", first_tap_port, ports["whisper"]),
        "second": Tap("second", SECOND_PORT, second_port),
    }
    proxy = MishearingProxy(
        PROXY_PORT, (HOST, first_tap_port), rate=args.rate, seed=args.seed
    )
    hass: subprocess.Popen[bytes] | None = None
    try:
        servers["whisper2"] = launch.start_ready(
            "whisper2", "whisper", second_port, logs / "second"
        )
        for tap in taps.values():
            await tap.start()
        await proxy.start()
        home_assistant.prepare_config(False, args.port, False)
        hass = home_assistant.start_hass(args.port)
        return await run_bench(args, hass, proxy, taps)
    finally:
        if hass is not None:
            await asyncio.to_thread(home_assistant.stop_hass, hass)
        await proxy.stop()
        for tap in taps.values():
            await tap.stop()
        for server in servers.values():
            server.stop()


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return value.split(",") if value else default


def main() -> int:
    """Run the bench, print its figures and save every run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sentences",
        type=int,
        default=int(os.environ.get("LOCAL_VOICE_SENTENCES", len(COMMANDS))),
        help="the first N commands of the demo home (LOCAL_VOICE_SENTENCES)",
    )
    parser.add_argument(
        "--voices",
        nargs="+",
        choices=sorted(VOICES),
        default=_env_list("LOCAL_VOICE_VOICES", list(BENCH_VOICES)),
        help="voices (LOCAL_VOICE_VOICES, comma separated)",
    )
    parser.add_argument(
        "--rooms",
        nargs="+",
        choices=ROOMS,
        default=_env_list("LOCAL_VOICE_ROOMS", list(ROOMS)),
        help="clean and/or noisy (LOCAL_VOICE_ROOMS, comma separated)",
    )
    parser.add_argument(
        "--sides", nargs="+", choices=SIDES, default=list(SIDES), help="sides to run"
    )
    parser.add_argument(
        "--debug", action="store_true", help="Local Voice's debug log in the HA log"
    )
    parser.add_argument("--rate", type=float, default=MISHEAR_RATE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=launch.free_port())
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, home_assistant.interrupt)
    DEVELOP.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for name, port in USUAL_PORTS.items():
        if home_assistant.port_in_use(port):
            print(f"ERROR: port {port} ({name}) is in use", file=sys.stderr)
            return 1
    began = time.monotonic()
    try:
        summary = asyncio.run(main_async(args))
    except home_assistant.SetupError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    summary["setup"]["wall_seconds"] = round(time.monotonic() - began, 1)
    args.json.write_text(json.dumps(summary, indent=1))
    runs = [Run(**r) for r in summary["runs"]]
    print("\n" + table(summary, args.rooms, summary["setup"]["sides"]))
    if text := details(runs):
        print("\n" + text)
    setup = summary["setup"]
    print(
        f"\n{len(runs)} runs in {setup['run_seconds']:.0f} s "
        f"({setup['wall_seconds']:.0f} s with the setup); all runs: {args.json}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
