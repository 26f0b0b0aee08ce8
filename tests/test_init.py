"""Setup, retry, health and unload with real servers that come and go."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from homeassistant.components import stt, wake_word
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.local_voice import config_flow
from custom_components.local_voice.const import DOMAIN, PROBE_INTERVAL
from custom_components.local_voice.provider import Provider
from scripts.servers import launch
from scripts.speech import SpeechMaker
from tests.common import (
    HOST,
    async_provider_entry,
    async_setup_integration,
    child_processes,
    entity_id,
    open_connections,
    provider_subentry_id,
)
from tests.pipeline_helpers import english_metadata


@pytest.fixture
def spare_wakeword(tmp_path: Path) -> Iterator[launch.Server]:
    """A wake word server of this test's own, free to be stopped."""
    port = launch.free_port()
    server = launch.start(
        "spare-wakeword",
        [launch.speech_python(), "-m", "scripts.servers.wakeword"],
        port,
        tmp_path,
    )
    yield server
    server.stop()


async def _wake_entry(
    hass: HomeAssistant, port: int, info_port: int
) -> MockConfigEntry:
    """An entry whose only provider is at `port`, described as `info_port` was."""
    info = (await config_flow.async_probe(HOST, info_port)).info
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Local Voice",
        data={},
        subentries_data=[
            {
                "data": Provider.from_info(HOST, port, info).as_data(),
                "subentry_type": "provider",
                "title": "wake words",
                "unique_id": f"{HOST}:{port}",
            }
        ],
    )
    entry.add_to_hass(hass)
    return entry


async def test_server_down_at_start_retries(
    voice_hass: HomeAssistant, wakeword: int, spare_wakeword: launch.Server
) -> None:
    """Nothing answers: ConfigEntryNotReady and a retry that succeeds later."""
    hass = voice_hass
    spare_wakeword.stop()
    entry = await _wake_entry(hass, spare_wakeword.port, wakeword)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert f"{HOST}:{spare_wakeword.port}" in entry.reason

    restarted = launch.start(
        "spare-wakeword-again",
        [launch.speech_python(), "-m", "scripts.servers.wakeword"],
        spare_wakeword.port,
        spare_wakeword.log_path.parent,
    )
    try:
        launch.wait_ready([restarted], timeout=60)
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        restarted.stop()


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_health_follows_the_server(
    voice_hass: HomeAssistant, wakeword: int, spare_wakeword: launch.Server
) -> None:
    """A server that dies makes its entity unavailable; its return restores it."""
    hass = voice_hass
    launch.wait_ready([spare_wakeword], timeout=60)
    entry = await _wake_entry(hass, spare_wakeword.port, wakeword)
    await async_setup_integration(hass, entry)
    subentry_id = next(iter(entry.subentries))
    wake_entity = entity_id(hass, "wake_word", f"{subentry_id}-wake_word")
    assert hass.states.get(wake_entity).state != "unavailable"
    connectivity = entity_id(hass, "binary_sensor", f"{subentry_id}-connectivity")
    probe = entity_id(hass, "sensor", f"{subentry_id}-probe_latency")
    assert hass.states.get(connectivity).state == "on"
    assert 0 < float(hass.states.get(probe).state) < 2000

    spare_wakeword.stop()
    async_fire_time_changed(hass, dt_util.utcnow() + 3 * PROBE_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(wake_entity).state == "unavailable"
    assert hass.states.get(connectivity).state == "off"
    assert hass.states.get(probe).state == "unavailable"

    back = launch.start(
        "spare-wakeword-back",
        [launch.speech_python(), "-m", "scripts.servers.wakeword"],
        spare_wakeword.port,
        spare_wakeword.log_path.parent,
    )
    try:
        launch.wait_ready([back], timeout=60)
        async_fire_time_changed(hass, dt_util.utcnow() + 6 * PROBE_INTERVAL)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert hass.states.get(wake_entity).state != "unavailable"
        assert hass.states.get(connectivity).state == "on"
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        back.stop()


async def test_unload_leaves_nothing_behind(
    voice_hass: HomeAssistant,
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
) -> None:
    """After real requests and an unload: no socket, process, task or thread.

    Tasks and threads are checked by the test plugin's cleanup check after
    every test; sockets and processes here.
    """
    hass = voice_hass
    children_before = child_processes()
    entry = await async_provider_entry(hass, piper, whisper, wakeword)
    await async_setup_integration(hass, entry)
    engine_id = entity_id(hass, "stt", f"{provider_subentry_id(entry, whisper)}-stt")
    engine = stt.async_get_speech_to_text_entity(hass, engine_id)
    assert engine is not None
    result = await engine.internal_async_process_audio_stream(
        english_metadata(),
        speech.piper("Turn off the bedroom lamp.").stream(),
    )
    assert result.result == stt.SpeechResultState.SUCCESS

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert open_connections({piper, whisper, wakeword}) == []
    assert child_processes() <= children_before


async def test_failed_request_marks_the_server_down(
    voice_hass: HomeAssistant,
    wakeword: int,
    spare_wakeword: launch.Server,
    speech: SpeechMaker,
) -> None:
    """A request that cannot reach its server marks it down at once."""
    hass = voice_hass
    launch.wait_ready([spare_wakeword], timeout=60)
    entry = await _wake_entry(hass, spare_wakeword.port, wakeword)
    await async_setup_integration(hass, entry)
    wake_entity = entity_id(
        hass, "wake_word", f"{next(iter(entry.subentries))}-wake_word"
    )
    engine = wake_word.async_get_wake_word_detection_entity(hass, wake_entity)
    assert engine is not None

    spare_wakeword.stop()
    result = await engine.async_process_audio_stream(
        speech.piper("Alexa, turn on the kitchen light.").timed_stream(), "alexa"
    )
    assert result is None
    assert hass.states.get(wake_entity).state == "unavailable"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await hass.config_entries.async_unload(entry.entry_id)
