"""Faults between Home Assistant and real servers; a real server killed mid-command.

The assistant has two speech-to-text servers (faster-whisper behind a
fault-injecting proxy, then the same faster-whisper directly) and two
text-to-speech servers (Piper behind a proxy, then Piper). For each fault a
spoken command still turns the light on, and the time the fault added to the
command is reported at the end of the test run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
import time

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice.const import SUBENTRY_ASSISTANT
from custom_components.local_voice.early_end import ENDED_READY
from custom_components.local_voice.provider import STALL_DEFAULT, Provider
from scripts.commands import normalize
from scripts.demo_home import async_setup_demo_home
from scripts.servers import launch
from scripts.speech import SpeechMaker
from tests.common import async_add_local_voice
from tests.fault_proxy import FAULTS, REPORT, FaultProxy
from tests.pipeline_helpers import async_run_speech

COMMAND = "Turn on the kitchen light."
# The command is spoken by espeak-ng, which says it the same way every time:
# Piper samples noise, and one unlucky sample would look like a fault.


@dataclass
class FaultyHome:
    """The demo home, Local Voice, and the proxies in front of its first servers."""

    hass: HomeAssistant
    entry: MockConfigEntry
    stt: FaultProxy
    tts: FaultProxy


@pytest.fixture
async def faulty_home(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
) -> AsyncIterator[FaultyHome]:
    """Local Voice added the newcomer's way, with a proxy first in each chain."""
    hass = voice_hass
    stt = await FaultProxy(launch.free_port(), whisper).async_start()
    tts = await FaultProxy(launch.free_port(), piper).async_start()
    await async_setup_demo_home(hass)
    entry = await async_add_local_voice(
        hass, scan_ports, stt.port, whisper, tts.port, piper, wakeword
    )
    assistant = _assistant(entry)
    assert [m.provider.port for m in assistant.stt.members] == [stt.port, whisper]
    assert [m.provider.port for m in assistant.tts.members] == [tts.port, piper]
    yield FaultyHome(hass, entry, stt, tts)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await stt.async_stop()
    await tts.async_stop()


def _assistant(entry: MockConfigEntry):  # type: ignore[no-untyped-def]
    (assistant_id,) = [
        s.subentry_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_ASSISTANT
    ]
    return entry.runtime_data.assistants[assistant_id]


async def _command(hass: HomeAssistant, speech: SpeechMaker) -> float:
    """Say the command; check the light turned on; return the seconds it took."""
    await hass.services.async_call(
        "light", "turn_off", {"entity_id": "light.kitchen_light"}, blocking=True
    )
    started = time.monotonic()
    run = await async_run_speech(hass, speech.espeak(COMMAND))
    took = time.monotonic() - started
    assert run.errors == []
    assert normalize(run.transcript) == "turn on the kitchen light"
    assert hass.states.get("light.kitchen_light").state == "on"
    return took


async def test_speech_to_text_faults(
    faulty_home: FaultyHome, speech: SpeechMaker, subtests: pytest.Subtests
) -> None:
    """Each fault of the first speech-to-text server: the command still works."""
    home = faulty_home
    first = _assistant(home.entry).stt.members[0].provider
    for _ in range(3):  # the first server's answer times set its stall bound
        await _command(home.hass, speech)
    for fault in FAULTS:
        with subtests.test(fault=fault):
            await _healthy(home, home.stt, first)
            baseline = await _command(home.hass, speech)
            failovers = first.failovers
            bound = first.stall_bound()
            await home.stt.async_set(fault)
            took = await _command(home.hass, speech)
            added = took - baseline
            REPORT.append(
                f"speech-to-text {fault:8} added {added:5.2f} s "
                f"(command {took:.2f} s, without the fault {baseline:.2f} s, "
                f"stall bound {bound:.2f} s, failovers {first.failovers - failovers})"
            )
            if fault == "stall":
                assert added < bound + 1.0
            if fault in {"refuse", "stall", "close", "corrupt"}:
                assert first.failovers == failovers + 1


async def test_text_to_speech_faults(
    faulty_home: FaultyHome, subtests: pytest.Subtests
) -> None:
    """Each fault of the first text-to-speech server: the answer is still spoken."""
    home = faulty_home
    chain = _assistant(home.entry).tts
    first = chain.members[0].provider

    async def speak(text: str) -> float:
        started = time.monotonic()
        audio = b"".join(
            [chunk.audio async for chunk in chain.async_synthesize(text, None)]
        )
        assert len(audio) > 22050  # over half a second of speech
        return time.monotonic() - started

    for number in range(3):
        await speak(f"Warming up, round {number}.")
    for number, fault in enumerate(FAULTS):
        with subtests.test(fault=fault):
            await _healthy(home, home.tts, first)
            baseline = await speak(f"The kitchen light is on, number {number}.")
            failovers = first.failovers
            bound = first.stall_bound()
            await home.tts.async_set(fault)
            took = await speak(f"The bedroom light is off, number {number}.")
            REPORT.append(
                f"text-to-speech {fault:8} added {took - baseline:5.2f} s "
                f"(answer {took:.2f} s, without the fault {baseline:.2f} s, "
                f"stall bound {bound:.2f} s)"
            )
            if fault == "stall":
                assert took - baseline < bound + 1.0
            if fault in {"refuse", "stall", "close", "corrupt"}:
                assert first.failovers == failovers + 1


async def _healthy(home: FaultyHome, proxy: FaultProxy, provider: Provider) -> None:
    """Take the fault away and wait until the first server is seen healthy again."""
    await proxy.async_set("none")
    # Probes started during the fault end first (a stalled one within 5 s).
    await home.hass.async_block_till_done(wait_background_tasks=True)
    await home.entry.runtime_data.providers[provider.subentry_id].async_refresh()
    assert provider.available


@pytest.fixture
def spare_whisper(tmp_path: Path, socket_enabled: None) -> Iterator[launch.Server]:
    """A faster-whisper server of this test's own, free to be killed."""
    server = launch.start_ready(
        "spare-whisper", "whisper", launch.free_port(), tmp_path
    )
    yield server
    server.stop()


async def test_killing_the_server_in_use_mid_command(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    spare_whisper: launch.Server,
    whisper: int,
    piper: int,
    wakeword: int,
    speech: SpeechMaker,
) -> None:
    """The Whisper server in use dies while the person speaks: the light turns on.

    Two speech-to-text and two text-to-speech servers, as a home with a second
    machine would have (the second Piper is the first one behind a proxy that
    lets everything through).
    """
    hass = voice_hass
    await async_setup_demo_home(hass)
    second_piper = await FaultProxy(launch.free_port(), piper).async_start()
    entry = await async_add_local_voice(
        hass,
        scan_ports,
        spare_whisper.port,
        whisper,
        piper,
        second_piper.port,
        wakeword,
    )
    assistant = _assistant(entry)
    assert [m.provider.port for m in assistant.stt.members] == [
        spare_whisper.port,
        whisper,
    ]
    assert len(assistant.tts.members) == 2
    first = assistant.stt.members[0].provider

    async def kill_soon() -> None:
        await asyncio.sleep(0.8)  # half a second into the speech
        spare_whisper.process.kill()

    killer = asyncio.create_task(kill_soon())
    started = time.monotonic()
    run = await async_run_speech(hass, speech.espeak(COMMAND), real_time=True)
    await killer
    REPORT.append(
        f"speech-to-text killed mid-command: command {time.monotonic() - started:.2f} s"
    )
    assert run.errors == []
    assert normalize(run.transcript) == "turn on the kitchen light"
    assert hass.states.get("light.kitchen_light").state == "on"
    assert first.failovers == 1
    _, answer = await run.async_reply_audio(hass)
    assert len(answer) > 22050
    assert await hass.config_entries.async_unload(entry.entry_id)
    await second_piper.async_stop()


@pytest.mark.parametrize("fault", ["stall", "close", "corrupt"])
async def test_a_fault_at_the_pause_loses_nothing(
    faulty_home: FaultyHome, speech: SpeechMaker, fault: str
) -> None:
    """Like a live microphone: the first server fails while the assistant
    looks at the pause. The look is dropped, the command fails over and still
    works, and no task of the look is left behind."""
    home = faulty_home
    hass = home.hass
    assistant = _assistant(home.entry)
    first = assistant.stt.members[0].provider

    async def say() -> float:
        await hass.services.async_call(
            "light", "turn_off", {"entity_id": "light.kitchen_light"}, blocking=True
        )
        started = time.monotonic()
        run = await async_run_speech(
            hass, speech.espeak(COMMAND), tail=3.0, real_time=True
        )
        took = time.monotonic() - started
        assert run.errors == []
        assert normalize(run.transcript) == "turn on the kitchen light"
        assert hass.states.get("light.kitchen_light").state == "on"
        return took

    for _ in range(3):  # the first server's answer times set its stall bound
        await say()
    assert _assistant(home.entry).recent_endings[-1].how == ENDED_READY
    bound = first.stall_bound()
    # Commands that a look ended measured the server all the same.
    assert bound < STALL_DEFAULT
    await home.stt.async_set(fault)
    took = await say()
    REPORT.append(
        f"speech-to-text {fault:8} at the pause, live: command {took:.2f} s "
        f"(stall bound {bound:.2f} s)"
    )
    # Speech, then Home Assistant's end of speech, then at worst the stall.
    assert took < 0.5 + 1.6 + 3.0 + bound
    await hass.async_block_till_done()
    assert not [
        task
        for task in asyncio.all_tasks()
        if task.get_name() == "local_voice early end" and not task.done()
    ]
