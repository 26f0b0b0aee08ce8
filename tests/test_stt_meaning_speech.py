"""By meaning with real speech: a first server that mishears, a second that hears.

The first speech-to-text server is the real Whisper behind a proxy that
swaps a word of every transcript for one that names nothing in the home
("chicken" for "kitchen"); the second is the same real Whisper, asked
directly. Local Voice is added the newcomer's way over both, with the demo
home; commands are spoken in four voices, live.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice.chain import FALLBACK_FAILURE
from scripts.servers.launch import free_port
from scripts.speech import SpeechMaker
from tests.common import async_add_local_voice, async_set_assistant
from tests.mishearing_proxy import ALWAYS, MishearingProxy
from tests.pipeline_helpers import CommandEvents, async_run_speech
from tests.test_command_suite import VOICES

LIGHT = "light.kitchen_light"
COMMAND = "Turn on the kitchen light."


@pytest.fixture
async def misheard(whisper: int) -> AsyncIterator[MishearingProxy]:
    """The real Whisper, mishearing every transcript."""
    async with MishearingProxy(free_port(), ("127.0.0.1", whisper), ALWAYS) as proxy:
        yield proxy


@pytest.fixture
async def entry(
    voice_hass: HomeAssistant,
    demo_home: None,
    scan_ports: list[int],
    misheard: MishearingProxy,
    whisper: int,
    piper: int,
) -> MockConfigEntry:
    """The demo home, then Local Voice over the mishearing server and Whisper."""
    added = await async_add_local_voice(
        voice_hass, scan_ports, misheard.port, whisper, piper
    )
    await _light_off(voice_hass)
    misheard.changes.clear()
    return added


async def _light_off(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "light", "turn_off", {"entity_id": LIGHT}, blocking=True
    )


@pytest.mark.parametrize("voice", list(VOICES))
async def test_the_next_server_hears_what_the_first_misheard(
    voice_hass: HomeAssistant,
    entry: MockConfigEntry,
    misheard: MishearingProxy,
    speech: SpeechMaker,
    voice: str,
) -> None:
    """By meaning (the default): the light goes on; the second server was asked."""
    hass = voice_hass
    commands = CommandEvents(hass)
    run = await async_run_speech(
        hass, VOICES[voice](speech, COMMAND), tail=3.0, real_time=True
    )
    assert not run.errors, run.errors
    data = await commands.number(1)
    assert misheard.changes, "the first server was not asked"
    assert hass.states.get(LIGHT).state == "on", (run.transcript, misheard.changes)
    assert data["stt_hops"] == 1
    assert data["asked"] is False
    assert data["stt_added_ms"] is not None


async def test_on_failure_only_the_misheard_command_is_not_done(
    voice_hass: HomeAssistant, entry: MockConfigEntry, speech: SpeechMaker
) -> None:
    """The mode of before: the misheard transcript goes on and nothing is done."""
    hass = voice_hass
    await async_set_assistant(hass, entry, stt_fallback=FALLBACK_FAILURE)
    commands = CommandEvents(hass)
    run = await async_run_speech(hass, speech.piper(COMMAND), tail=3.0, real_time=True)
    data = await commands.number(1)
    assert data["stt_hops"] == 0
    assert "kitchen" not in run.transcript.lower()
    assert hass.states.get(LIGHT).state == "off"
