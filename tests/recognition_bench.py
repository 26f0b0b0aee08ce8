"""Recognition: the spoken-command suite with name repair on and off, and core.

Not part of the suite (the file name keeps pytest from collecting it);
`scripts/recognition` runs it. Home Assistant and Local Voice are set up the
newcomer's way over the real Piper, faster-whisper and wake word servers, in
the demo home. Every command of the spoken-command suite is said in each
voice of `scripts.hearing.VOICES`, clean and in a noisy, reverberant room
(10 dB SNR), and sent through the preferred pipeline with trailing silence,
so that the pipeline decides the end of speech. Every recording is run with
name repair on (the assistant's option), each followed by the same recording
through Home Assistant's own Wyoming integration over the same servers; then
every one again with repair off.
The audio is paced like a live microphone (real time), so a run takes a
while: LOCAL_VOICE_VOICES=piper-joe,espeak-en-us picks voices.

Prints the success rate per voice and room for the three, the commands
core gets right and Local Voice does not, and every
failure with its transcript; writes the whole as JSON (path printed). Then
`test_repair_time` measures what the repair adds to a command.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
import json
import os
from pathlib import Path
import statistics
import time
from typing import Any

from homeassistant.components.assist_pipeline.pipeline import (
    async_create_default_pipeline,
)
from homeassistant.components.conversation.agent_manager import async_get_agent
from homeassistant.components.conversation.default_agent import DefaultAgent
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest

from custom_components.local_voice.names import NameRepair, conversation_input
from scripts.commands import COMMANDS
from scripts.demo_home import async_setup_demo_home
from scripts.figures import percentile
from scripts.hearing import MISHEARD, VOICES, noisy
from scripts.speech import Speech, SpeechMaker
from tests.common import (
    assistant_subentry,
    async_add_local_voice,
    async_set_assistant,
    entity_id,
)
from tests.pipeline_helpers import async_run_speech
from tests.test_command_suite import LIVE_TAIL, async_prepare, succeeded

# A run of several minutes: no per-test timeout.
pytestmark = pytest.mark.timeout(0)


async def test_recognition(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Report the success rates with and without name repair, and of core."""
    hass = voice_hass
    await async_setup_demo_home(hass)
    entry = await async_add_local_voice(hass, scan_ports, piper, whisper, wakeword)
    subentry_id = assistant_subentry(entry).subentry_id
    recordings = []
    for voice, say in _voices().items():
        for command in COMMANDS:
            clean = say(speech, command.text)
            recordings.append((voice, command, "clean", clean))
            recordings.append((voice, command, "noisy", noisy(clean)))
    core = await _core_pipeline(
        hass, whisper, entity_id(hass, "tts", f"{subentry_id}-tts")
    )
    results: list[dict[str, Any]] = []
    # Repair on, each recording through Local Voice and then through core's
    # Wyoming integration (the same servers); then repair off.
    for repair in (True, False):
        await async_set_assistant(hass, entry, repair_names=repair)
        assistant = entry.runtime_data.assistants[subentry_id]
        assert assistant.settings.repair_names == repair
        setups = [(REPAIR if repair else NO_REPAIR, None)]
        if repair:
            setups.append((CORE, core))
        for voice, command, room, audio in recordings:
            for setup, pipeline_id in setups:
                await async_prepare(hass, command)
                await hass.async_block_till_done()
                run = await async_run_speech(
                    hass,
                    audio,
                    pipeline_id=pipeline_id,
                    tail=LIVE_TAIL,
                    real_time=True,
                )
                await hass.async_block_till_done()
                results.append(
                    {
                        "voice": voice,
                        "room": room,
                        "setup": setup,
                        "command": command.text,
                        "heard": run.transcript if not run.errors else "",
                        "answer": run.answer if not run.errors else "",
                        "ok": not run.errors and succeeded(hass, command, run),
                    }
                )
    path = tmp_path / "recognition.json"
    path.write_text(json.dumps(results, indent=1))
    with capsys.disabled():
        print("\n" + "\n".join(_report(results, path)))


REPAIR, NO_REPAIR, CORE = "local voice", "no repair", "core wyoming"


def _voices() -> dict[str, Callable[[SpeechMaker, str], Speech]]:
    """Return the voices to run: all, or those named in LOCAL_VOICE_VOICES."""
    chosen = os.environ.get("LOCAL_VOICE_VOICES")
    if not chosen:
        return VOICES
    return {name: VOICES[name] for name in chosen.split(",")}


async def _core_pipeline(hass: HomeAssistant, whisper: int, tts_entity: str) -> str:
    """Add core's Wyoming integration for the Whisper server; return its pipeline.

    The pipeline has core's speech-to-text and Local Voice's text-to-speech,
    so that only the way in differs.
    """
    result = await hass.config_entries.flow.async_init(
        "wyoming",
        context={"source": SOURCE_USER},
        data={"host": "127.0.0.1", "port": whisper},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    (core_stt,) = [
        e.entity_id
        for e in er.async_get(hass).entities.values()
        if e.platform == "wyoming" and e.domain == "stt"
    ]
    pipeline = await async_create_default_pipeline(
        hass, core_stt, tts_entity, "Core Wyoming"
    )
    assert pipeline is not None
    return pipeline.id


def _report(results: list[dict[str, Any]], path: Path) -> list[str]:
    """Return the success table per room and voice, and each failure."""
    lines = [f"Spoken-command suite, {len(COMMANDS)} commands per voice ({path})"]
    table: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    for r in results:
        table[r["voice"], r["room"], r["setup"]].append(r["ok"])
    setups = (REPAIR, NO_REPAIR, CORE)
    for room in ("clean", "noisy"):
        lines.append(f"{room}: voice" + "".join(f"  {s:>13}" for s in setups))
        for voice in [*_voices(), None]:
            cells = []
            for setup in setups:
                oks = [
                    ok
                    for (v, rm, st), values in table.items()
                    if rm == room and st == setup and voice in (None, v)
                    for ok in values
                ]
                cells.append(
                    f"{sum(oks)}/{len(oks)} ({100 * statistics.mean(oks):.1f} %)"
                    if voice is None
                    else f"{sum(oks)}/{len(oks)}"
                )
            label = voice or "overall"
            lines.append(f"  {label:24}" + "".join(f"  {c:>13}" for c in cells))
    ours = {
        (r["voice"], r["room"], r["command"]): r["ok"]
        for r in results
        if r["setup"] == REPAIR
    }
    lost = [
        r
        for r in results
        if r["setup"] == CORE
        and r["ok"]
        and not ours[r["voice"], r["room"], r["command"]]
    ]
    lines.append(f"Commands core gets right and Local Voice does not: {len(lost)}")
    lines.extend(
        f"  FAIL {r['room']} {r['voice']} {r['setup']}: {r['command']!r}"
        f" heard {r['heard']!r} answered {r['answer']!r}"
        for r in results
        if not r["ok"]
    )
    return lines


async def test_repair_time(
    voice_hass: HomeAssistant, capsys: pytest.CaptureFixture[str]
) -> None:
    """Report what name repair adds to a command, in the demo home.

    For a command the agent understands, the repair's check is one match,
    which Home Assistant's intent cache then answers for the pipeline: the
    figure is (check + the pipeline's match) minus the pipeline's match
    alone, each from a cleared cache. For misheard transcripts, the whole
    repair, found or not.
    """
    hass = voice_hass
    assert await async_setup_component(hass, "conversation", {})
    await async_setup_demo_home(hass)
    agent = async_get_agent(hass)
    assert isinstance(agent, DefaultAgent)
    repair = NameRepair(hass)
    await repair.async_repair("Turn on the kitchen light.", "en")  # load intents

    async def timed(*steps: Callable[[], Awaitable[object]]) -> float:
        agent._intent_cache.clear()
        started = time.perf_counter()
        for step in steps:
            await step()
        return (time.perf_counter() - started) * 1000

    added = []
    for _ in range(5):
        for command in COMMANDS:
            text = command.text
            alone = await timed(
                lambda t=text: agent.async_recognize_intent(conversation_input(t, "en"))
            )
            both = await timed(
                lambda t=text: repair.async_repair(t, "en"),
                lambda t=text: agent.async_recognize_intent(
                    conversation_input(t, "en")
                ),
            )
            added.append(both - alone)
    misheard = json.loads(MISHEARD.read_text())
    repairs, found = [], 0
    for _ in range(3):
        for item in misheard:
            agent._intent_cache.clear()
            started = time.perf_counter()
            result = await repair.async_repair(item["heard"], "en")
            repairs.append((time.perf_counter() - started) * 1000)
            found += result is not None

    def figures(values: list[float]) -> str:
        return (
            f"median {statistics.median(values):.2f} ms,"
            f" p95 {percentile(values, 0.95):.2f} ms,"
            f" max {max(values):.2f} ms (n={len(values)})"
        )

    with capsys.disabled():
        print(
            "\nName repair time"
            f"\n  understood commands, added: {figures(added)}"
            f"\n  misheard transcripts ({found // 3} repaired of {len(misheard)}):"
            f" {figures(repairs)}"
        )
