"""Wakes: false wakes per hour and misses, with and without the second check, and core.

Not part of the suite (the file name keeps pytest from collecting it);
`scripts/wake_bench` runs it. The demo home with Local Voice added the
newcomer's way, over the real Piper and faster-whisper servers and one wake
word server running both microWakeWord ("alexa", the assistant's wake word)
and openWakeWord ("alexa_oww", the second model the check may ask); and Home
Assistant's own Wyoming integration over the same wake word and Whisper
servers (core), in a pipeline of its own.

Audio: tests/wake_corpus.py: half an hour of speech without the wake word,
dense with near words ("Alexis", "Alaska", "election", ...), with television
music and noise and two voices over each other; and 48 wake commands, half
with a breath after "Alexa", half without (0.2 to 0.25 s), six voices.

- `test_false_wakes`: each long recording goes through each pipeline from the
  wake word stage as fast as it is taken, a new run after each one ends, as
  a satellite does. Local Voice runs with the check observing: every wake is
  checked both ways (its speech-to-text and the second model) and none is
  dropped, so that each way of deciding is judged on the same wakes: the
  listening check at normal and strict, the second model alone, either, both.
- `test_wake_commands`: each command, paced like a live microphone, through
  core and Local Voice without the check, in turn; then through Local Voice
  with the check at normal, deciding its own way, and observing as above.
  Per command: woken (and passed), whether the transcript is the command
  word for word, its first word and the words wrong, and the time from the
  end of "Alexa" to the first audio of the answer.

Each prints its table and writes JSON (LOCAL_VOICE_RESULTS, default the
test's temporary folder). LOCAL_VOICE_MINUTES and LOCAL_VOICE_COMMANDS
bound a run, LOCAL_VOICE_SIDES picks sides (core,lv,checked,observed), and
LOCAL_VOICE_WAKE_WORD=alexa_oww makes openWakeWord's model the assistant's
(and core's) wake word, with microWakeWord's as the second model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import statistics
import time
from typing import Any

from homeassistant.components import tts
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    async_pipeline_from_audio_stream,
)
from homeassistant.components.assist_pipeline.pipeline import (
    PipelineStage,
    async_get_pipeline,
)
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from rapidfuzz.distance import Levenshtein

from custom_components.local_voice import stt, wake_check
from custom_components.local_voice.wake_check import (
    PASS_SCORE,
    QUIET,
    WAKE_CHECK_NORMAL,
    WAKE_CHECK_STRICT,
    Verdict,
    Wake,
)
from scripts.commands import normalize
from scripts.demo_home import async_setup_demo_home
from scripts.figures import percentile
from scripts.speech import Speech, SpeechMaker, silence
from tests.common import async_add_local_voice, async_core_pipeline, async_set_assistant
from tests.pipeline_helpers import METADATA
from tests.wake_corpus import (
    COMMAND_COUNT,
    MINUTES,
    SpeechPiece,
    WakeCommand,
    speech_pieces,
    wake_commands,
)

pytestmark = pytest.mark.timeout(0)

CORE, LV = "core wyoming", "local voice"
LV_CHECKED = f"local voice, checked ({wake_check.WAY})"
LV_OBSERVED = "local voice, observed"
# LOCAL_VOICE_SIDES picks some of them: core,lv,checked,observed.
SIDES = {"core": CORE, "lv": LV, "checked": LV_CHECKED, "observed": LV_OBSERVED}
# The ways of deciding a wake, judged on the same wakes.
WAYS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "no check": lambda w: True,
    "listening, normal": lambda w: _heard(w, PASS_SCORE[WAKE_CHECK_NORMAL]),
    "listening, strict": lambda w: _heard(w, PASS_SCORE[WAKE_CHECK_STRICT]),
    "second model": lambda w: w["model"] is not False,
    "either": lambda w: (
        (_heard(w, PASS_SCORE[WAKE_CHECK_NORMAL]) or w["model"] is not False)
        if w["model"] is not None
        else _heard(w, PASS_SCORE[WAKE_CHECK_NORMAL])
    ),
    "both": lambda w: (
        _heard(w, PASS_SCORE[WAKE_CHECK_NORMAL]) and w["model"] is not False
    ),
}
CHUNK = 320  # 10 ms
# The assistant's (and core's) wake word model: microWakeWord's "alexa" (the
# default), or openWakeWord's "alexa_oww"; the other one is the second model.
WAKE_WORD = os.environ.get("LOCAL_VOICE_WAKE_WORD", "alexa")


def _heard(wake: dict[str, Any], need: float) -> bool:
    """A check that could not tell lets the wake stand."""
    return wake["score"] is None or wake["score"] >= need


def _env_number(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _results(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LOCAL_VOICE_RESULTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Observed:
    """The wakes the assistant recorded; while observing, every opinion of each."""

    wakes: list[Wake] = field(default_factory=list)
    monkeypatch: pytest.MonkeyPatch | None = None
    observing: bool = False

    def observe(self, on: bool) -> None:
        """Ask the speech-to-text and the second model about every wake, drop none."""
        assert self.monkeypatch is not None
        if on and not self.observing:
            self.monkeypatch.setattr(wake_check, "decide", lambda *a, **k: True)
            self.monkeypatch.setattr(stt, "async_check", _observing)
        elif not on and self.observing:
            self.monkeypatch.setattr(wake_check, "decide", _DECIDE)
            self.monkeypatch.setattr(stt, "async_check", _CHECK)
        self.observing = on


_DECIDE = wake_check.decide
_CHECK = wake_check.async_check


async def _observing(
    wake: Wake,
    audio: bytes,
    transcribe: Callable[[bytes], Awaitable[str | None]],
    way: str | None = None,
) -> Verdict | None:
    """Both opinions of a wake, side by side (decide says yes to all)."""

    async def model() -> bool | None:
        if wake.confirm is None:
            return None
        try:
            return await wake.confirm(audio)
        except Exception:  # noqa: BLE001 - an opinion that could not be had
            return None

    listening, opinion = await asyncio.gather(
        _CHECK(wake, audio, transcribe, wake_check.BY_LISTENING), model()
    )
    if listening is not None:
        listening.model = opinion
    return listening


@dataclass
class Bench:
    """The home, both pipelines and what the check observed."""

    hass: HomeAssistant
    lv: str
    core: str
    entry: Any
    observed: Observed


@pytest.fixture
async def bench(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword_both: int,
    socket_enabled: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Bench:
    """The demo home, Local Voice and core over the same servers."""
    hass = voice_hass
    await async_setup_demo_home(hass)
    entry = await async_add_local_voice(hass, scan_ports, piper, whisper, wakeword_both)
    if WAKE_WORD != "alexa":
        await async_set_assistant(hass, entry, wake_word=WAKE_WORD)
    lv = async_get_pipeline(hass)
    assert lv.wake_word_id == WAKE_WORD, lv
    core = await async_core_pipeline(
        hass, whisper, lv.tts_engine or "", lv.tts_voice, (wakeword_both, WAKE_WORD)
    )
    # Every wake the assistant records is noted.
    observed = Observed(monkeypatch=monkeypatch)
    start = wake_check.WakeLog.start

    def noting(
        self: wake_check.WakeLog, conversation_id: str | None, wake: Wake
    ) -> Wake:
        observed.wakes.append(wake)
        return start(self, conversation_id, wake)

    monkeypatch.setattr(wake_check.WakeLog, "start", noting)
    return Bench(hass, lv.id, core, entry, observed)


@dataclass
class RunRecord:
    """One pipeline run over the audio."""

    woke: bool = False
    wake_ms: int | None = None  # the detection, from the start of the run
    transcript: str | None = None
    answer: str | None = None
    first_audio: float | None = None  # wall clock
    errors: list[str] = field(default_factory=list)


async def _run(
    hass: HomeAssistant, pipeline: str, audio: AsyncIterator[bytes]
) -> RunRecord:
    """One run from the wake word stage; the reply's first audio is timed."""
    record = RunRecord()
    readers: list[asyncio.Task[None]] = []

    async def first_audio(token: str) -> None:
        stream = tts.async_get_stream(hass, token)
        if stream is None:
            return
        try:
            async for _chunk in stream.async_stream_result():
                if record.first_audio is None:
                    record.first_audio = time.monotonic()
        except HomeAssistantError as err:
            record.errors.append(f"tts: {err}")

    def on_event(event: PipelineEvent) -> None:
        data = event.data or {}
        if event.type == PipelineEventType.WAKE_WORD_END:
            output = data.get("wake_word_output") or {}
            record.woke = bool(output)
            record.wake_ms = output.get("timestamp")
        elif event.type == PipelineEventType.STT_END:
            record.transcript = data["stt_output"]["text"]
        elif event.type == PipelineEventType.INTENT_END:
            speech = data["intent_output"]["response"]["speech"]
            record.answer = speech.get("plain", {}).get("speech", "")
        elif event.type == PipelineEventType.TTS_END and data.get("tts_output"):
            readers.append(
                hass.async_create_task(first_audio(data["tts_output"]["token"]))
            )
        elif event.type == PipelineEventType.ERROR:
            record.errors.append(str(data.get("code")))

    await async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=on_event,
        stt_metadata=METADATA,
        stt_stream=audio,
        pipeline_id=pipeline,
        start_stage=PipelineStage.WAKE_WORD,
        end_stage=PipelineStage.TTS,
        tts_audio_output="wav",
    )
    if readers:
        await asyncio.wait(readers, timeout=30)
    return record


class Source:
    """One recording, read by one pipeline run after another."""

    def __init__(self, speech: Speech, *, real_time: bool) -> None:
        """Cut into 10 ms chunks; paced like a microphone when asked."""
        self._chunks = speech.chunks(size=CHUNK)
        self._next = 0
        self._real_time = real_time
        self.started = time.monotonic()
        # When each chunk went out (wall clock), for the timings.
        self.sent: dict[int, float] = {}

    @property
    def done(self) -> bool:
        """Return True when all the audio was taken."""
        return self._next >= len(self._chunks)

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the audio from where the last run stopped."""
        while self._next < len(self._chunks):
            index = self._next
            if self._real_time:
                due = self.started + index * 0.01
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
            else:
                await asyncio.sleep(0)
            self._next += 1
            self.sent[index] = time.monotonic()
            yield self._chunks[index]


def _wake_row(wake: Wake) -> dict[str, Any]:
    verdict: Verdict | None = wake.verdict
    return {
        "dropped": wake.dropped(),
        "check_ms": None if verdict is None else verdict.milliseconds,
        "score": None if verdict is None else verdict.score,
        "model": None if verdict is None else verdict.model,
        "heard": None if verdict is None else verdict.heard,
    }


async def _settle(bench: Bench, wakes_before: int) -> list[dict[str, Any]]:
    """Wait for the checks of the wakes since `wakes_before`; return their rows."""
    new = bench.observed.wakes[wakes_before:]
    checks = [w.check for w in new if w.check is not None]
    if checks:
        await asyncio.wait(checks, timeout=30)
    return [_wake_row(w) for w in new]


async def test_false_wakes(bench: Bench, speech: SpeechMaker, tmp_path: Path) -> None:
    """Half an hour without the wake word: how often each side wakes."""
    hass = bench.hass
    await async_set_assistant(hass, bench.entry, wake_check=WAKE_CHECK_NORMAL)
    bench.observed.observe(True)
    minutes = _env_number("LOCAL_VOICE_MINUTES", MINUTES)
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    for piece in speech_pieces(speech, minutes):
        seconds += piece.speech.seconds
        for side, pipeline in ((CORE, bench.core), (LV, bench.lv)):
            rows.extend(await _false_wakes(bench, piece, side, pipeline))
    hours = seconds / 3600
    table = _false_wake_table(rows, hours)
    print(table)
    path = _results(tmp_path) / f"wake_false-{WAKE_WORD}.json"
    path.write_text(json.dumps({"hours": hours, "rows": rows}, indent=1))
    print(f"results: {path}")


async def _false_wakes(
    bench: Bench, piece: SpeechPiece, side: str, pipeline: str
) -> list[dict[str, Any]]:
    source = Source(piece.speech, real_time=False)
    rows = []
    while not source.done:
        before = len(bench.observed.wakes)
        at = source._next / 100
        record = await _run(bench.hass, pipeline, source.stream())
        if not record.woke:
            continue
        checked = await _settle(bench, before) if side == LV else [{}]
        rows.append(
            {
                "piece": piece.name,
                "scene": piece.scene,
                "side": side,
                "after_s": round(at + (record.wake_ms or 0) / 1000, 2),
                "transcript": record.transcript,
                "errors": record.errors,
                **(checked[0] if checked else {}),
            }
        )
    return rows


def _false_wake_table(rows: list[dict[str, Any]], hours: float) -> str:
    lines = [
        f"False wakes on {hours * 60:.1f} minutes of speech without the wake word",
        f"{'side / way':32} {'wakes':>6} {'per hour':>9}",
    ]
    core = [r for r in rows if r["side"] == CORE]
    lines.append(f"{CORE:32} {len(core):>6} {len(core) / hours:>9.1f}")
    lv = [r for r in rows if r["side"] == LV]
    for way, passes in WAYS.items():
        kept = [r for r in lv if passes(r)]
        lines.append(f"{LV + ', ' + way:32} {len(kept):>6} {len(kept) / hours:>9.1f}")
    return "\n".join(lines)


async def test_wake_commands(bench: Bench, speech: SpeechMaker, tmp_path: Path) -> None:
    """'Alexa, ...' with and without a breath: woken, whole, and how soon answered."""
    hass = bench.hass
    count = int(_env_number("LOCAL_VOICE_COMMANDS", COMMAND_COUNT))
    rows: list[dict[str, Any]] = []
    commands = list(wake_commands(speech, count))
    chosen = os.environ.get("LOCAL_VOICE_SIDES")
    sides = [
        side
        for key, side in SIDES.items()
        if chosen is None or key in chosen.split(",")
    ]
    # Side by side, command by command: core and Local Voice without the
    # check; then the check as it decides, and observing every opinion.
    for check, both in (
        ("off", (CORE, LV)),
        (WAKE_CHECK_NORMAL, (LV_CHECKED, LV_OBSERVED)),
    ):
        pair = [side for side in both if side in sides]
        if not pair:
            continue
        await async_set_assistant(hass, bench.entry, wake_check=check)
        for command in commands:
            for side in pair:
                bench.observed.observe(side == LV_OBSERVED)
                pipeline = bench.core if side == CORE else bench.lv
                rows.append(await _wake_command(bench, side, pipeline, command))
    bench.observed.observe(False)
    table = _command_table(rows)
    print(table)
    path = _results(tmp_path) / f"wake_commands-{WAKE_WORD}.json"
    path.write_text(json.dumps(rows, indent=1))
    print(f"results: {path}")


async def _wake_command(
    bench: Bench, side: str, pipeline: str, command: WakeCommand
) -> dict[str, Any]:
    before = len(bench.observed.wakes)
    source = Source(silence(0.5) + command.speech + silence(4.0), real_time=True)
    record = await _run(bench.hass, pipeline, source.stream())
    checked = await _settle(bench, before) if side in (LV_CHECKED, LV_OBSERVED) else []
    end_chunk = (int(0.5 * 16000) + command.wake_end) * 2 // CHUNK
    wake_end = source.sent.get(end_chunk)
    latency = (
        round(record.first_audio - wake_end, 3)
        if record.first_audio is not None and wake_end is not None
        else None
    )
    transcript = record.transcript
    return {
        "side": side,
        "name": command.name,
        "voice": command.voice,
        "breath": command.breath,
        "command": command.command,
        "woke": record.woke,
        "transcript": transcript,
        "whole": transcript is not None
        and transcript != QUIET
        and normalize(transcript) == normalize(command.command),
        "first_audio_after_wake_s": latency,
        "errors": record.errors,
        **(checked[0] if checked else {}),
    }


def _command_table(rows: list[dict[str, Any]]) -> str:
    title = (
        "Wake commands: woken (and passed), transcript word for word, its first "
        "word right, words wrong, end of 'Alexa' to first audio (median / p95)"
    )
    header = (
        f"{'side / way':40} {'breath':>6} {'woken':>6} {'whole':>6} "
        f"{'first':>6} {'wrong':>6} {'median s':>9} {'p95 s':>6}"
    )
    lines = [title, header]

    def add(
        label: str, chosen: list[dict[str, Any]], passes: Callable[..., bool]
    ) -> None:
        for breath in (True, False):
            part = [r for r in chosen if r["breath"] is breath]
            woken = [r for r in part if r["woke"] and passes(r)]
            whole = [r for r in woken if r["whole"]]
            said = [normalize(r["command"]).split() for r in woken]
            heard = [normalize(r["transcript"] or "").split() for r in woken]
            first = sum(h[:1] == w[:1] for w, h in zip(said, heard, strict=True))
            wrong = sum(
                Levenshtein.distance(w, h) for w, h in zip(said, heard, strict=True)
            ) / max(1, sum(len(w) for w in said))
            times = [
                r["first_audio_after_wake_s"]
                for r in woken
                if r["first_audio_after_wake_s"] is not None
            ]
            lines.append(
                f"{label:40} {'yes' if breath else 'no':>6} "
                f"{len(woken):>3}/{len(part):<2} {len(whole):>3}/{len(part):<2} "
                f"{first:>3}/{len(part):<2} {wrong:>6.1%} "
                f"{statistics.median(times) if times else float('nan'):>9.2f} "
                f"{percentile(times, 0.95) if times else float('nan'):>6.2f}"
            )

    add(CORE, [r for r in rows if r["side"] == CORE], lambda r: True)
    add(LV + ", no check", [r for r in rows if r["side"] == LV], lambda r: True)
    add(
        LV_CHECKED,
        [r for r in rows if r["side"] == LV_CHECKED],
        lambda r: not r.get("dropped"),
    )
    observed = [r for r in rows if r["side"] == LV_OBSERVED]
    for way, passes in WAYS.items():
        if way != "no check" and observed:
            add(f"observed: {way}", observed, passes)
    return "\n".join(lines)
