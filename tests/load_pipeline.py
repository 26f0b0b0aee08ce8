"""Load: N spoken commands at once through the Assist pipeline, real servers.

Not part of the suite (the file name keeps pytest from collecting it);
`scripts/load` runs it. Home Assistant and Local Voice are set up the
newcomer's way over Piper, two faster-whisper servers and the wake word
server. For N = 1, 4, 8, 16 it sends N different commands at once (several
voices), first with one Whisper server in the assistant's chain, then with
both, pooled (each command to the least busy one), and prints, per N and
setup: successes, and the median and 95th percentile of end of audio ->
transcript and of the whole run. Every command must succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
import statistics
import time

from homeassistant.components.assist_pipeline import PipelineEventType
from homeassistant.core import HomeAssistant
import pytest

from custom_components.local_voice.const import SUBENTRY_ASSISTANT
from scripts.commands import normalize
from scripts.demo_home import async_setup_demo_home
from scripts.figures import percentile
from scripts.servers import launch
from scripts.speech import Speech, SpeechMaker
from tests.common import async_add_local_voice
from tests.pipeline_helpers import Run, async_run_speech

LEVELS = (1, 4, 8, 16)
COMMANDS = (
    "Turn on the kitchen light.",
    "Turn off the bedroom light.",
    "Turn on the living room light.",
    "What is the temperature in the kitchen?",
)
VOICES = ("piper", "en-us", "en-gb", "en-us+m3")


def _seconds(run: Run, start: PipelineEventType, end: PipelineEventType) -> float:
    first = next(e for e in run.events if e.type == start)
    last = next(e for e in run.events if e.type == end)
    return (
        datetime.fromisoformat(last.timestamp) - datetime.fromisoformat(first.timestamp)
    ).total_seconds()


def _speech(speech: SpeechMaker, index: int) -> tuple[str, Speech]:
    text = COMMANDS[index % len(COMMANDS)]
    voice = VOICES[(index // len(COMMANDS)) % len(VOICES)]
    return text, speech.piper(text) if voice == "piper" else speech.espeak(text, voice)


@pytest.fixture
def second_whisper(tmp_path: Path, socket_enabled: None) -> Iterator[launch.Server]:
    """Another faster-whisper server, for the pooled runs."""
    server = launch.start_ready("whisper-2", "whisper", launch.free_port(), tmp_path)
    yield server
    server.stop()


async def test_concurrent_commands(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
    second_whisper: launch.Server,
    speech: SpeechMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every command of every level succeeds, with one server and two pooled."""
    hass = voice_hass
    await async_setup_demo_home(hass)
    entry = await async_add_local_voice(
        hass, scan_ports, whisper, second_whisper.port, piper, wakeword
    )
    (subentry,) = [
        s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_ASSISTANT
    ]
    spoken = [_speech(speech, index) for index in range(max(LEVELS))]
    lines = []
    failures = []
    both = list(subentry.data["stt_providers"])
    assert len(both) == 2
    for pooled in (False, True):
        hass.config_entries.async_update_subentry(
            entry,
            subentry,
            data={
                **subentry.data,
                "stt_providers": both if pooled else both[:1],
                "pooled": pooled,
            },
        )
        await hass.async_block_till_done()
        subentry = entry.subentries[subentry.subentry_id]
        for level in LEVELS:
            started = time.monotonic()
            runs = await asyncio.gather(
                *(async_run_speech(hass, audio) for _, audio in spoken[:level])
            )
            wall = time.monotonic() - started
            ok = 0
            stt, total = [], []
            for (text, _), run in zip(spoken[:level], runs, strict=True):
                heard = ""
                try:
                    heard = normalize(run.transcript)
                    answered = run.answer
                except AssertionError:
                    answered = ""
                if not run.errors and heard == normalize(text) and answered:
                    ok += 1
                else:
                    failures.append((pooled, level, text, heard, run.errors))
                if run.errors:
                    continue
                vad_end = any(
                    e.type == PipelineEventType.STT_VAD_END for e in run.events
                )
                stt.append(
                    _seconds(
                        run,
                        PipelineEventType.STT_VAD_END
                        if vad_end
                        else PipelineEventType.STT_START,
                        PipelineEventType.STT_END,
                    )
                )
                total.append(
                    _seconds(
                        run, PipelineEventType.RUN_START, PipelineEventType.RUN_END
                    )
                )
            lines.append(
                f"{'two, pooled' if pooled else 'one server '} N={level:2}: "
                f"{ok}/{level} ok; "
                f"end of speech -> transcript p50 {statistics.median(stt):.2f} s "
                f"p95 {percentile(stt, 0.95):.2f} s; "
                f"whole run p50 {statistics.median(total):.2f} s "
                f"p95 {percentile(total, 0.95):.2f} s; wall {wall:.1f} s"
            )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert failures == []
    assert await hass.config_entries.async_unload(entry.entry_id)
