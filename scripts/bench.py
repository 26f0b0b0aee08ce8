"""End of speech to answer: Home Assistant's Wyoming integration against Local Voice.

Run through scripts/bench, which prepares the environment and points the
configuration at .bench/ (LOCAL_VOICE_DEVELOP_DIR):

    scripts/bench                 the whole run (about 8 minutes once the speech is made)
    scripts/bench --items 10      a short one
    scripts/bench --json FILE     where the figures go (default .bench/bench.json)

It starts Piper, faster-whisper and the wake word server on free ports, with
a tap in front of each on its usual port (10200, 10300, 10400). The tap
passes Wyoming events on unchanged and notes when each one passes, so the
servers' own time can be told from the time spent around them. Then a real
Home Assistant (`hass`) is onboarded, the demo home arranged, and set up
twice over the same servers:

- A: Home Assistant's own `wyoming` integration (one entry per server) and a
  pipeline of its entities, the same voice and wake word;
- B: Local Voice, added with every default (its pipeline is preferred).

Each spoken command goes through the websocket `assist_pipeline/run`, as
the frontend sends it: 20 ms of audio every 20 ms, then silence at the same
pace until the run ends, never an end-of-audio frame. A and B alternate
item by item (A B, B A, ...). Times are taken from the end of speech in the
recording to the stt-end and intent-end events and to the first byte of the
spoken answer (fetched when text-to-speech starts, as the frontend does).
The floor is the same audio, cut at the end of speech, sent straight to
Whisper with the `wyoming` client, plus the reply sent straight to Piper.
Printed: per stage median and p95 for A, B and the floor; the B/A ratio
pair by pair; where the time goes (endpointing, the servers, everything
else); success per side; how often B ended early; Home Assistant's peak RSS;
and B's own latency sensors after each of its commands, against the bench's
figures for the same run.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.tts import Synthesize

from scripts import home_assistant
from scripts.commands import COMMANDS, SpokenCommand, normalize
from scripts.figures import percentile, spread
from scripts.hearing import VOICES
from scripts.servers import launch
from scripts.speech import BYTES_PER_SECOND, Speech, SpeechMaker, silence

BENCH = home_assistant.DEVELOP
HOST = "127.0.0.1"
CHUNK_SECONDS = 0.02
CHUNK_BYTES = int(CHUNK_SECONDS * BYTES_PER_SECOND)
# Audio before the speech (a microphone opened before one speaks) and the
# most silence sent after it before a run counts as hung.
LEAD_SECONDS = 0.5
MAX_TAIL_SECONDS = 8.0
# A pause inside a sentence: long enough to be a pause, short enough that
# Home Assistant's own VAD (about 1.1-1.3 s) does not end the command.
INNER_PAUSE_SECONDS = 0.5
WAKE_PAUSE_SECONDS = 0.4
BENCH_VOICES = ("piper-joe", "espeak-en-us", "espeak-en-gb", "espeak-en-us-f3")
CORE_PIPELINE = "Core Wyoming"


@dataclass
class Passage:
    """One request through a tap: when its events passed."""

    service: str
    opened: float
    audio_stop: float | None = None
    transcript: float | None = None
    text: str | None = None
    synthesize: float | None = None
    first_audio: float | None = None


class Tap:
    """A Wyoming proxy on `port` to `upstream` that notes when events pass."""

    def __init__(self, service: str, port: int, upstream: int) -> None:
        """Listen on port later."""
        self.service = service
        self.port = port
        self.upstream = upstream
        self.passages: list[Passage] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        passage = Passage(self.service, time.monotonic())
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream)
        except OSError:
            writer.close()
            return
        self.passages.append(passage)

        async def pipe(
            source: asyncio.StreamReader,
            sink: asyncio.StreamWriter,
            note: Callable[[Event], None],
        ) -> None:
            try:
                while (event := await async_read_event(source)) is not None:
                    note(event)
                    await async_write_event(event, sink)
            except ConnectionError, asyncio.IncompleteReadError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    sink.close()

        def from_client(event: Event) -> None:
            now = time.monotonic()
            if AudioStop.is_type(event.type):
                passage.audio_stop = now
            elif Synthesize.is_type(event.type) or event.type == "synthesize-start":
                passage.synthesize = passage.synthesize or now

        def from_server(event: Event) -> None:
            now = time.monotonic()
            if Transcript.is_type(event.type):
                passage.transcript = now
                passage.text = Transcript.from_event(event).text
            elif AudioChunk.is_type(event.type) and passage.first_audio is None:
                passage.first_audio = now

        await asyncio.gather(
            pipe(reader, up_writer, from_client), pipe(up_reader, writer, from_server)
        )


@dataclass(frozen=True)
class Item:
    """A recording to run through both sides."""

    name: str
    command: SpokenCommand
    speech: Speech
    # Where the speech ends in the recording (after LEAD_SECONDS), seconds.
    speech_end: float
    wake: bool = False


@dataclass
class Timing:
    """One run: times from the end of speech, in seconds, and what happened."""

    side: str
    item: str
    ok: bool = False
    heard: str = ""
    answer: str = ""
    error: str | None = None
    ended_early: bool | None = None
    stt: float | None = None
    intent: float | None = None
    first_byte: float | None = None
    # Where the time went.
    endpoint: float | None = None  # end of speech -> audio-stop at the server
    stt_server: float | None = None  # audio-stop -> transcript at the server
    stt_after: float | None = None  # transcript at the server -> stt-end
    tts_server: float | None = None  # synthesize -> first audio at the server
    tts_after: float | None = None  # first audio at the server -> first byte
    floor_stt: float | None = None
    floor_tts: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_items(maker: SpeechMaker, count: int) -> list[Item]:
    """Return `count` items: every command in turn, voices in turn, some
    with the wake word first and some with a pause inside the sentence."""
    items: list[Item] = []
    index = 0
    while len(items) < count:
        command = COMMANDS[index % len(COMMANDS)]
        voice = BENCH_VOICES[(index + index // len(COMMANDS)) % len(BENCH_VOICES)]
        say = VOICES[voice]
        kind = index % 5
        if kind == 1 and command.pause_after:
            rest = command.text[len(command.pause_after) :].strip()
            speech = (
                say(maker, command.pause_after)
                + silence(INNER_PAUSE_SECONDS)
                + say(maker, rest)
            )
            label = f"{command.pause_after} ... {rest}"
        elif kind == 3:
            speech = say(maker, "Alexa.") + silence(WAKE_PAUSE_SECONDS)
            speech = speech + say(maker, command.text)
            label = f"Alexa. {command.text}"
        else:
            speech = say(maker, command.text)
            label = command.text
        recording = silence(LEAD_SECONDS) + speech
        items.append(
            Item(
                name=f"{index + 1:02} {voice}: {label}",
                command=command,
                speech=recording,
                speech_end=LEAD_SECONDS + speech.end(),
                wake=kind == 3,
            )
        )
        index += 1
    return items


async def set_scene(api: home_assistant.Api, command: SpokenCommand) -> None:
    """Make the call that comes before the command."""
    call = command.before
    await api.request(
        "POST",
        f"/api/services/{call.domain}/{call.service}",
        {"entity_id": call.entity_id, **call.data},
    )


async def judge(api: home_assistant.Api, command: SpokenCommand, answer: str) -> bool:
    """Return True when the home is as the command says."""
    expect = command.expect
    state: dict[str, Any] = {}
    if expect.entity_id is not None:
        state = await api.request("GET", f"/api/states/{expect.entity_id}")
    return expect.met(
        state.get("state"), state.get("attributes", {}), normalize(answer)
    )


async def send_paced(
    ws: aiohttp.ClientWebSocketResponse,
    handler: int,
    audio: bytes,
    sent_from: list[float],
) -> None:
    """Send audio to a pipeline run as a live microphone does: a chunk per 20 ms.

    The moment the first chunk goes is appended to `sent_from`.
    """
    begin = time.monotonic()
    sent_from.append(begin)
    for n, offset in enumerate(range(0, len(audio), CHUNK_BYTES)):
        delay = begin + n * CHUNK_SECONDS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send_bytes(bytes([handler]) + audio[offset : offset + CHUNK_BYTES])


@dataclass
class LiveRun:
    """A pipeline run of an item said like a live microphone."""

    # Each event's data and arrival (time.monotonic()), by type.
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    # When the speech ended and the spoken answer's first byte came.
    speech_end: float | None = None
    first_byte: float | None = None
    error: str | None = None


async def run_live(api: home_assistant.Api, item: Item, pipeline_id: str) -> LiveRun:
    """Run the item's audio through the pipeline to text-to-speech, at a live pace.

    The audio is sent a chunk per 20 ms, then silence, until speech-to-text
    ends; the spoken answer is fetched as the frontend does, so its first
    audio comes.
    """
    run = LiveRun()
    ws = await api.websocket()
    run_id = api.next_id()
    await ws.send_json(
        {
            "id": run_id,
            "type": "assist_pipeline/run",
            "pipeline": pipeline_id,
            "start_stage": "wake_word" if item.wake else "stt",
            "end_stage": "tts",
            "input": {"sample_rate": 16000, **({"timeout": 10} if item.wake else {})},
        }
    )
    sender: asyncio.Task[None] | None = None
    fetch: asyncio.Task[None] | None = None
    audio = item.speech.pcm + bytes(int(MAX_TAIL_SECONDS * BYTES_PER_SECOND))
    sent_from: list[float] = []

    async def get_audio(url: str) -> None:
        async with api.session.get(api.base_url + url) as response:
            async for _ in response.content.iter_any():
                run.first_byte = time.monotonic()
                break
            await response.read()

    try:
        while "run-end" not in run.arrived:
            message = await ws.receive_json(timeout=60)
            if message.get("id") != run_id:
                continue
            if message["type"] == "result":
                if not message.get("success", True):
                    run.error = str(message.get("error"))
                    break
                continue
            event = message["event"]
            kind = event["type"]
            run.arrived.setdefault(kind, time.monotonic())
            run.data.setdefault(kind, event.get("data") or {})
            if kind == "run-start":
                handler = event["data"]["runner_data"]["stt_binary_handler_id"]
                sender = asyncio.create_task(send_paced(ws, handler, audio, sent_from))
            if kind == "stt-end" and sender is not None:
                # Its handler is gone: audio after this only fills the log.
                sender.cancel()
            streaming = kind == "intent-progress" and (event.get("data") or {}).get(
                "tts_start_streaming"
            )
            if (streaming or kind in ("tts-start", "tts-end")) and fetch is None:
                url = run.data["run-start"].get("tts_output", {}).get("url")
                if url:
                    fetch = asyncio.create_task(get_audio(url))
            if kind == "error":
                run.error = str(event.get("data"))
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    if fetch is not None:
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            await asyncio.wait_for(fetch, 30)
    if sent_from:
        run.speech_end = sent_from[0] + item.speech_end
    return run


async def run_item(
    api: home_assistant.Api, item: Item, side: str, pipeline_id: str
) -> tuple[Timing, float, float]:
    """Run one item like a live microphone; return its timing and the run's span."""
    timing = Timing(side=side, item=item.name)
    await set_scene(api, item.command)
    started = time.monotonic()
    run = await run_live(api, item, pipeline_id)
    ended = time.monotonic()
    timing.error = run.error
    speech_end, arrived = run.speech_end, run.arrived
    if speech_end is None:
        return timing, started, ended
    timing.extra["speech_end_at"] = speech_end
    timing.extra["vad_end"] = "stt-vad-end" in arrived
    for stage, kind in (("stt", "stt-end"), ("intent", "intent-end")):
        if kind in arrived:
            setattr(timing, stage, arrived[kind] - speech_end)
    if run.first_byte is not None:
        timing.first_byte = run.first_byte - speech_end
    timing.heard, timing.answer = home_assistant.heard_and_answer(run.data)
    timing.extra["arrived"] = {k: v - speech_end for k, v in arrived.items()}
    timing.extra["tts_text"] = run.data.get("tts-start", {}).get("tts_input", "")
    if timing.error is None:
        timing.ok = await judge(api, item.command, timing.answer)
    return timing, started, ended


def attribute(timing: Timing, taps: dict[str, Tap], span: tuple[float, float]) -> None:
    """Split a run's time into endpointing, servers and the rest, from the taps."""
    speech_end = timing.extra.get("speech_end_at")
    arrived = timing.extra.get("arrived", {})
    if speech_end is None or "stt-end" not in arrived:
        return
    stt_end = speech_end + arrived["stt-end"]
    used = [
        p
        for p in taps["whisper"].passages
        if span[0] <= p.opened <= span[1]
        and p.transcript is not None
        and p.transcript <= stt_end
        and p.audio_stop is not None
    ]
    if used:
        passage = max(used, key=lambda p: p.transcript or 0.0)
        assert passage.audio_stop is not None and passage.transcript is not None
        timing.endpoint = passage.audio_stop - speech_end
        timing.stt_server = passage.transcript - passage.audio_stop
        timing.stt_after = stt_end - passage.transcript
    spoken = [
        p
        for p in taps["piper"].passages
        if span[0] <= p.opened <= span[1] and p.first_audio is not None
    ]
    if spoken and timing.first_byte is not None:
        passage = spoken[0]
        assert passage.first_audio is not None and passage.synthesize is not None
        timing.tts_server = passage.first_audio - passage.synthesize
        timing.tts_after = speech_end + timing.first_byte - passage.first_audio


async def floor(
    item: Item, tts_text: str, ports: dict[str, int]
) -> tuple[float, float]:
    """Return Whisper's and Piper's own times, straight from the `wyoming` client."""
    pcm = item.speech.pcm[: int(item.speech_end * 16000) * 2]
    async with AsyncTcpClient(HOST, ports["whisper"]) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for offset in range(0, len(pcm), CHUNK_BYTES):
            await client.write_event(
                AudioChunk(
                    rate=16000,
                    width=2,
                    channels=1,
                    audio=pcm[offset : offset + CHUNK_BYTES],
                ).event()
            )
        stop = time.monotonic()
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            if Transcript.is_type(event.type):
                break
        stt = time.monotonic() - stop
    async with AsyncTcpClient(HOST, ports["piper"]) as client:
        start = time.monotonic()
        await client.write_event(Synthesize(text=tts_text or "Done").event())
        while (event := await client.read_event()) is not None:
            if AudioChunk.is_type(event.type):
                break
        tts = time.monotonic() - start
        while (event := await client.read_event()) is not None:
            if event.type == "audio-stop":
                break
    return stt, tts


async def add_core_wyoming(api: home_assistant.Api, pipeline_b: dict[str, Any]) -> str:
    """Add Home Assistant's wyoming integration for each server; return A's pipeline id."""
    for port in home_assistant.SERVER_PORTS.values():
        flow = await api.request(
            "POST", "/api/config/config_entries/flow", {"handler": "wyoming"}
        )
        result = await api.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"host": HOST, "port": port},
        )
        if result.get("type") != "create_entry":
            raise home_assistant.SetupError(f"wyoming at {port}: {result}")
    entities = await api.ws("config/entity_registry/list")
    by_domain: dict[str, str] = {}
    for entity in entities:
        if entity["platform"] == "wyoming":
            by_domain.setdefault(entity["entity_id"].split(".")[0], entity["entity_id"])
    missing = {"stt", "tts", "wake_word"} - by_domain.keys()
    if missing:
        raise home_assistant.SetupError(f"core wyoming made no {missing} entity")
    engine = await api.ws("tts/engine/get", engine_id=by_domain["tts"])
    languages = engine["provider"]["supported_languages"]
    wanted = pipeline_b["tts_language"].replace("_", "-").casefold()
    tts_language = next(
        (x for x in languages if x.replace("_", "-").casefold() == wanted),
        languages[0],
    )
    created = await api.ws(
        "assist_pipeline/pipeline/create",
        name=CORE_PIPELINE,
        language=pipeline_b["language"],
        conversation_engine=pipeline_b["conversation_engine"],
        conversation_language=pipeline_b["conversation_language"],
        prefer_local_intents=pipeline_b.get("prefer_local_intents", True),
        stt_engine=by_domain["stt"],
        stt_language=pipeline_b["stt_language"],
        tts_engine=by_domain["tts"],
        tts_language=tts_language,
        tts_voice=pipeline_b["tts_voice"],
        wake_word_entity=by_domain["wake_word"],
        wake_word_id=pipeline_b["wake_word_id"],
    )
    return str(created["id"])


def summarize(timings: list[Timing], rss_kib: int | None) -> dict[str, Any]:
    """Return the figures: per stage and side, ratios, where the time went."""
    sides = {"A": "core wyoming", "B": "Local Voice"}

    def of(side: str, name: str) -> list[float]:
        return [
            value
            for t in timings
            if t.side == side and (value := getattr(t, name)) is not None
        ]

    summary: dict[str, Any] = {
        "sides": sides,
        "stages": {
            stage: {
                side: {**spread(values), "n": len(values)}
                for side in sides
                if (values := of(side, stage))
            }
            for stage in ("stt", "intent", "first_byte")
        },
        "parts": {
            part: {
                side: statistics.median(values)
                for side in sides
                if (values := of(side, part))
            }
            for part in (
                "endpoint",
                "stt_server",
                "stt_after",
                "tts_server",
                "tts_after",
            )
        },
    }
    if floor_stt := of("B", "floor_stt"):
        floors = [
            t.floor_stt + t.floor_tts
            for t in timings
            if t.floor_stt is not None and t.floor_tts is not None
        ]
        summary["floor"] = {
            "stt": statistics.median(floor_stt),
            "tts_first_audio": statistics.median(of("B", "floor_tts")),
            "first_byte": statistics.median(floors),
            "first_byte_p95": percentile(floors, 0.95),
        }
    summary["parts"]["intent_stage"] = {
        side: statistics.median(spans)
        for side in sides
        if (
            spans := [
                t.intent - t.stt
                for t in timings
                if t.side == side and t.intent is not None and t.stt is not None
            ]
        )
    }
    by_item: dict[str, dict[str, Timing]] = {}
    for t in timings:
        by_item.setdefault(t.item, {})[t.side] = t
    ratios = [
        pair["B"].first_byte / pair["A"].first_byte
        for pair in by_item.values()
        if "A" in pair
        and "B" in pair
        and pair["A"].first_byte
        and pair["B"].first_byte is not None
    ]
    if ratios:
        summary["ratio_first_byte"] = {**spread(ratios), "pairs": len(ratios)}
    summary["success"] = {
        side: [sum(t.ok for t in timings if t.side == side), len(by_item)]
        for side in sides
    }
    summary["lost"] = [
        name
        for name, pair in by_item.items()
        if pair.get("A") and pair["A"].ok and pair.get("B") and not pair["B"].ok
    ]
    summary["won"] = [
        name
        for name, pair in by_item.items()
        if pair.get("B") and pair["B"].ok and pair.get("A") and not pair["A"].ok
    ]
    # B's sensors against the bench's own clock, which knows where the
    # speech ends in the recording.
    summary["sensors"] = {
        stage: {
            **spread(values),
            "minus_bench": spread(
                [
                    t.extra[f"sensor_{key}"] - value
                    for t in timings
                    if t.side == "B"
                    and f"sensor_{key}" in t.extra
                    and (value := getattr(t, stage)) is not None
                ]
            ),
            "n": len(values),
        }
        for stage, key in zip(("stt", "intent", "first_byte"), SENSORS, strict=True)
        if (
            values := [
                t.extra[f"sensor_{key}"]
                for t in timings
                if t.side == "B" and f"sensor_{key}" in t.extra
            ]
        )
    }
    checks = [t.extra["check_ms"] for t in timings if t.extra.get("check_ms")]
    if checks:
        summary["early_check_ms"] = spread(checks)
    b_runs = [t for t in timings if t.side == "B" and t.ended_early is not None]
    summary["early"] = [sum(bool(t.ended_early) for t in b_runs), len(b_runs)]
    summary["peak_rss_mib"] = round(rss_kib / 1024, 1) if rss_kib else None
    return summary


def table(summary: dict[str, Any]) -> str:
    """Return the figures as a short text table."""

    def ms(value: float) -> str:
        return f"{value * 1000:7.0f}"

    lines = [
        "From the end of speech (ms)      A core: median   p95   B Local Voice: median   p95",
    ]
    names = {
        "stt": "-> stt-end",
        "intent": "-> intent-end",
        "first_byte": "-> first TTS byte",
    }
    for stage, label in names.items():
        row = summary["stages"].get(stage, {})
        a, b = row.get("A"), row.get("B")
        if a and b:
            lines.append(
                f"  {label:<28}{ms(a['median'])}{ms(a['p95'])}"
                f"                {ms(b['median'])}{ms(b['p95'])}"
            )
    if "floor" in summary:
        f = summary["floor"]
        lines.append(
            f"  floor (servers alone): stt {ms(f['stt'])}, tts first audio "
            f"{ms(f['tts_first_audio'])}, first byte {ms(f['first_byte'])}"
        )
    if "ratio_first_byte" in summary:
        r = summary["ratio_first_byte"]
        lines.append(
            f"  B/A first byte, pair by pair: median {r['median']:.2f}, "
            f"p95 {r['p95']:.2f} ({r['pairs']} pairs)"
        )
    for stage, label in names.items():
        if figure := summary.get("sensors", {}).get(stage):
            lines.append(
                f"  B's sensor {label:<17}{ms(figure['median'])}{ms(figure['p95'])}"
                f"   sensor - bench: median {ms(figure['minus_bench']['median'])}"
                f" (n={figure['n']})"
            )
    lines.append("Where the time went (median ms)   A       B")
    labels = {
        "endpoint": "end of speech -> audio sent",
        "stt_server": "Whisper working",
        "stt_after": "transcript -> stt-end",
        "intent_stage": "stt-end -> intent-end",
        "tts_server": "Piper to first audio",
        "tts_after": "first audio -> first byte",
    }
    for part, label in labels.items():
        row = summary["parts"].get(part, {})
        if "A" in row and "B" in row:
            lines.append(f"  {label:<30}{ms(row['A'])} {ms(row['B'])}")
    if "early_check_ms" in summary:
        check = summary["early_check_ms"]
        lines.append(
            f"  (B's early end: the agent's check {check['median']:.1f} ms median, "
            f"{check['p95']:.1f} ms p95, part of transcript -> stt-end)"
        )
    success = summary["success"]
    lines.append(
        f"Success: A {success['A'][0]}/{success['A'][1]}, "
        f"B {success['B'][0]}/{success['B'][1]}; "
        f"B ended early {summary['early'][0]}/{summary['early'][1]}; "
        f"Home Assistant peak RSS {summary['peak_rss_mib']} MiB"
    )
    lines.extend(f"  lost by B (A right): {name}" for name in summary["lost"])
    lines.extend(f"  won by B (A wrong): {name}" for name in summary["won"])
    return "\n".join(lines)


def peak_rss_kib(pid: int) -> int | None:
    """Return a process's peak resident memory (VmHWM) in KiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


async def bench(
    args: argparse.Namespace,
    hass: subprocess.Popen[bytes],
    taps: dict[str, Tap],
    ports: dict[str, int],
) -> dict[str, Any]:
    """Set up both sides, run the items, return the summary."""
    maker = SpeechMaker(ports["piper"], BENCH / "speech")
    (BENCH / "speech").mkdir(parents=True, exist_ok=True)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=300)
    ) as session:
        api = home_assistant.Api(session, f"http://{HOST}:{args.port}")
        try:
            await home_assistant.onboard(api, hass)
            await home_assistant.add_local_voice(api)
            await home_assistant.remove_onboarding_cloud(api)
            await home_assistant.arrange_home(api)
            pipelines = await api.ws("assist_pipeline/pipeline/list")
            pipeline_b = next(
                p
                for p in pipelines["pipelines"]
                if p["id"] == pipelines["preferred_pipeline"]
            )
            pipeline_a = await add_core_wyoming(api, pipeline_b)
            await home_assistant.arrange_home(api)  # core's entities are not exposed
            figures = await assistant_figures(api)
            items = await asyncio.to_thread(make_items, maker, args.items)
            home_assistant.say(f"{len(items)} items, A and B alternating")
            timings: list[Timing] = []
            for n, item in enumerate(items):
                order = (("A", pipeline_a), ("B", pipeline_b["id"]))
                if n % 2:
                    order = order[::-1]
                pair: dict[str, Timing] = {}
                for side, pipeline_id in order:
                    before = await endings(api) if side == "B" else None
                    timing, started, ended = await run_item(
                        api, item, side, pipeline_id
                    )
                    attribute(timing, taps, (started, ended))
                    if side == "B":
                        timing.extra.update(await figures.after_command())
                        after = await endings(api)
                        if after and before is not None:
                            early = after["count"]["early"] > before["count"]["early"]
                            timing.ended_early = early
                            if early:
                                timing.extra["check_ms"] = after["recent"][-1][
                                    "check_ms"
                                ]
                    pair[side] = timing
                    timings.append(timing)
                    await asyncio.sleep(0.3)
                tts_text = pair["B"].extra.get("tts_text") or pair["A"].extra.get(
                    "tts_text", ""
                )
                pair["B"].floor_stt, pair["B"].floor_tts = await floor(
                    item, tts_text, ports
                )
                a, b = pair["A"], pair["B"]
                print(
                    f"  {item.name} ({n + 1}/{len(items)})\n"
                    f"      A {_fmt(a.first_byte)} {'ok ' if a.ok else 'BAD'} {a.heard!r}\n"
                    f"      B {_fmt(b.first_byte)} {'ok ' if b.ok else 'BAD'} {b.heard!r}"
                    f"{' (early)' if b.ended_early else ''}",
                    flush=True,
                )
        finally:
            await api.close()
    summary = summarize(timings, peak_rss_kib(hass.pid))
    summary["runs"] = [asdict(t) for t in timings]
    return summary


def _fmt(value: float | None) -> str:
    return f"{value * 1000:5.0f} ms" if value is not None else "   -- ms"


# B's own latency sensors, by the event key they follow.
SENSORS = ("speech_to_transcript", "speech_to_intent", "speech_to_first_audio")


@dataclass
class AssistantFigures:
    """Local Voice's own command sensors, read after each of B's commands."""

    api: home_assistant.Api
    entity_ids: dict[str, str]
    commands: int = 0

    async def state(self, key: str) -> str:
        """Return one sensor's state."""
        found = await self.api.request("GET", f"/api/states/{self.entity_ids[key]}")
        return str(found["state"])

    async def after_command(self) -> dict[str, float]:
        """Wait for the command's event to reach the sensors; return them in s."""
        for _ in range(50):
            if int(await self.state("commands")) > self.commands:
                break
            await asyncio.sleep(0.1)
        else:
            return {}  # no event: the figures stay out
        self.commands += 1
        values: dict[str, float] = {}
        for key in SENSORS:
            with contextlib.suppress(ValueError):
                values[f"sensor_{key}"] = float(await self.state(key)) / 1000
        return values


async def assistant_figures(api: home_assistant.Api) -> AssistantFigures:
    """Find the assistant's command sensors (unique id `<subentry>-<key>`)."""
    registry = await api.ws("config/entity_registry/list")
    entity_ids = {
        key: entry["entity_id"]
        for entry in registry
        if entry["platform"] == "local_voice"
        for key in (*SENSORS, "commands")
        if entry["unique_id"].endswith(f"-{key}")
    }
    figures = AssistantFigures(api, entity_ids)
    figures.commands = int(await figures.state("commands"))
    return figures


async def endings(api: home_assistant.Api) -> dict[str, Any] | None:
    """Return Local Voice's record of how commands ended (diagnostics)."""
    entries = await api.request(
        "GET", "/api/config/config_entries/entry?domain=local_voice"
    )
    if not entries:
        return None
    report = await api.request(
        "GET", f"/api/diagnostics/config_entry/{entries[0]['entry_id']}"
    )
    (assistant,) = report["data"]["assistants"]
    return dict(assistant["command_endings"])


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, their taps and Home Assistant; run; stop everything."""
    ports = {name: launch.free_port() for name in home_assistant.SERVER_PORTS}
    # On this thread, not a worker's: a server ends with the thread that
    # started it (scripts/children.py).
    servers = launch.start_all(home_assistant.SERVER_LOGS, ports)
    taps = {
        name: Tap(name, home_assistant.SERVER_PORTS[name], ports[name])
        for name in ports
    }
    hass: subprocess.Popen[bytes] | None = None
    try:
        for tap in taps.values():
            await tap.start()
        home_assistant.prepare_config(False, args.port, False)
        hass = home_assistant.start_hass(args.port)
        return await bench(args, hass, taps, ports)
    finally:
        if hass is not None:
            await asyncio.to_thread(home_assistant.stop_hass, hass)
        for tap in taps.values():
            await tap.stop()
        for server in servers.values():
            server.stop()


def main() -> int:
    """Run the benchmark and print and save its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=40, help="spoken commands")
    parser.add_argument("--port", type=int, default=launch.free_port())
    parser.add_argument("--json", type=Path, default=BENCH / "bench.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, home_assistant.interrupt)
    BENCH.mkdir(parents=True, exist_ok=True)
    for name, port in home_assistant.SERVER_PORTS.items():
        if home_assistant.port_in_use(port):
            print(
                f"ERROR: port {port} ({name}) is in use; the bench puts its tap there",
                file=sys.stderr,
            )
            return 1
    try:
        summary = asyncio.run(main_async(args))
    except home_assistant.SetupError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    args.json.write_text(json.dumps(summary, indent=1))
    print("\n" + table(summary))
    print(f"\nAll runs: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
