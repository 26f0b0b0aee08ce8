"""Recognition: the spoken-command suite with name repair on and off.

Not part of the suite (the file name keeps pytest from collecting it);
`scripts/recognition` runs it. Home Assistant and Local Voice are set up the
newcomer's way over the real Piper, faster-whisper and wake word servers, in
the demo home. Every command of the spoken-command suite is said in each
voice of `scripts.hearing.VOICES`, clean and in a noisy, reverberant room
(10 dB SNR), and sent through the preferred pipeline with trailing silence,
so that the pipeline decides the end of speech. Every recording is run with
name repair on (the assistant's option), then every one with it off.
The audio is sent as fast as it is taken: it is the same audio a live
microphone would send, the pace only changes how long the run takes.

Prints the success rate per voice and room for both settings, and every
failure with its transcript; writes the whole as JSON (path printed). Then
`test_repair_time` measures what the repair adds to a command.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
import json
from pathlib import Path
import statistics
import time
from typing import Any

from homeassistant.components.conversation import ConversationInput
from homeassistant.components.conversation.agent_manager import async_get_agent
from homeassistant.components.conversation.default_agent import DefaultAgent
from homeassistant.core import Context, HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from custom_components.local_voice.const import SUBENTRY_ASSISTANT
from custom_components.local_voice.names import NameRepair
from scripts.demo_home import async_setup_demo_home
from scripts.hearing import MISHEARD, VOICES, noisy
from scripts.speech import SpeechMaker
from tests.common import async_add_local_voice
from tests.pipeline_helpers import async_run_speech
from tests.test_command_suite import COMMANDS, LIVE_TAIL

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
    """Report the success rates with and without name repair."""
    hass = voice_hass
    await async_setup_demo_home(hass)
    entry = await async_add_local_voice(hass, scan_ports, piper, whisper, wakeword)
    (subentry,) = [
        s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_ASSISTANT
    ]
    recordings = []
    for voice, say in VOICES.items():
        for command in COMMANDS:
            clean = say(speech, command.text)
            recordings.append((voice, command, "clean", clean))
            recordings.append((voice, command, "noisy", noisy(clean)))
    results: list[dict[str, Any]] = []
    for repair in (True, False):
        hass.config_entries.async_update_subentry(
            entry,
            entry.subentries[subentry.subentry_id],
            data={
                **entry.subentries[subentry.subentry_id].data,
                "repair_names": repair,
            },
        )
        await hass.async_block_till_done()
        assistant = entry.runtime_data.assistants[subentry.subentry_id]
        assert assistant.settings.repair_names == repair
        for voice, command, room, audio in recordings:
            await command.prepare(hass)
            await hass.async_block_till_done()
            count = assistant.repair_count
            run = await async_run_speech(hass, audio, tail=LIVE_TAIL)
            await hass.async_block_till_done()
            results.append(
                {
                    "voice": voice,
                    "room": room,
                    "repair": repair,
                    "command": command.text,
                    "heard": run.transcript if not run.errors else "",
                    "repaired": assistant.repair_count > count,
                    "answer": run.answer if not run.errors else "",
                    "ok": not run.errors and command.check(hass, run),
                }
            )
    path = tmp_path / "recognition.json"
    path.write_text(json.dumps(results, indent=1))
    lines = [f"Spoken-command suite, {len(COMMANDS)} commands per voice ({path})"]
    table: dict[tuple[str, str, bool], list[bool]] = defaultdict(list)
    for r in results:
        table[r["voice"], r["room"], r["repair"]].append(r["ok"])
    for room in ("clean", "noisy"):
        lines.append(f"{room}: voice  with repair  without")
        for voice in VOICES:
            on, off = table[voice, room, True], table[voice, room, False]
            lines.append(f"  {voice:24} {sum(on):2}/{len(on)}  {sum(off):2}/{len(off)}")
        on = [ok for (_, rm, rep), v in table.items() if rm == room and rep for ok in v]
        off = [
            ok
            for (_, rm, rep), v in table.items()
            if rm == room and not rep
            for ok in v
        ]
        lines.append(
            f"  overall {sum(on)}/{len(on)} ({100 * statistics.mean(on):.1f} %)"
            f" against {sum(off)}/{len(off)} ({100 * statistics.mean(off):.1f} %)"
        )
    lines.extend(
        f"  FAIL {r['room']} {r['voice']} repair={r['repair']}: {r['command']!r}"
        f" heard {r['heard']!r} answered {r['answer']!r}"
        for r in results
        if not r["ok"]
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))


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

    def conversation_input(text: str) -> ConversationInput:
        return ConversationInput(
            text=text,
            context=Context(),
            conversation_id=None,
            device_id=None,
            satellite_id=None,
            language="en",
            agent_id="conversation.home_assistant",
        )

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
                lambda t=text: agent.async_recognize_intent(conversation_input(t))
            )
            both = await timed(
                lambda t=text: repair.async_repair(t, "en"),
                lambda t=text: agent.async_recognize_intent(conversation_input(t)),
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
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return (
            f"median {statistics.median(values):.2f} ms, p95 {p95:.2f} ms,"
            f" max {ordered[-1]:.2f} ms (n={len(values)})"
        )

    with capsys.disabled():
        print(
            "\nName repair time"
            f"\n  understood commands, added: {figures(added)}"
            f"\n  misheard transcripts ({found // 3} repaired of {len(misheard)}):"
            f" {figures(repairs)}"
        )
