"""Each of Home Assistant's private internals that ha_adapter.py relies on.

A Home Assistant upgrade that changes one of them fails here, not in a home.
Also: setting the entry up while its pipeline already has runs in the debug
history (after a failed first setup, after a reload), which once failed.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.components import tts
from homeassistant.components.assist_pipeline import async_get_pipeline
from homeassistant.components.assist_pipeline.runtime import KEY_ASSIST_PIPELINE
from homeassistant.components.tts.const import DATA_TTS_MANAGER
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.limited_size_dict import LimitedSizeDict
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.local_voice import ha_adapter
from custom_components.local_voice.ha_adapter import (
    EndedRun,
    RunWatch,
    async_agent_intents,
    async_agent_sentences,
    async_forget_replies,
    async_match_intent,
    async_match_sentence_trigger,
    debug_recording_dir,
)
from custom_components.local_voice.names import conversation_input
from tests.common import assistant_subentry, async_set_assistant, entity_id
from tests.conftest import StubHome
from tests.pipeline_helpers import CommandEvents

LIGHT = "light.kitchen_light"


async def _typed(
    hass_ws_client: WebSocketGenerator, hass: HomeAssistant, text: str
) -> None:
    """Run a typed command through the preferred pipeline, as the dialog does."""
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "assist_pipeline/run",
            "start_stage": "intent",
            "end_stage": "intent",
            "input": {"text": text},
        }
    )
    assert (await client.receive_json())["success"]
    while (await client.receive_json())["event"]["type"] != "run-end":
        pass
    await client.close()
    await hass.async_block_till_done()


def _debug(hass: HomeAssistant, pipeline_id: str) -> Any:
    return hass.data[KEY_ASSIST_PIPELINE].pipeline_debug.get(pipeline_id)


async def test_debug_history_as_the_watch_relies_on_it(
    hass: HomeAssistant,
    stub_home: StubHome,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Runs land in a per-pipeline LimitedSizeDict of runs with a list of events.

    Home Assistant keeps a slot it finds (it creates one only when there is
    none), appends each event to the run's list with an ISO timestamp, ends
    with run-end, and looks the run up afresh for every event.
    """
    pipeline = async_get_pipeline(hass)
    assert await hass.config_entries.async_unload(stub_home.entry.entry_id)
    slot = _debug(hass, pipeline.id)
    assert slot is None or type(slot) is LimitedSizeDict
    await _typed(hass_ws_client, hass, "turn on the kitchen light")
    slot = _debug(hass, pipeline.id)
    assert type(slot) is LimitedSizeDict
    assert slot.size_limit == ha_adapter.STORED_PIPELINE_RUNS
    (run,) = slot.values()
    assert type(run.events) is list
    kinds = [str(event.type) for event in run.events]
    assert kinds[0] == "run-start"
    assert kinds[-1] == ha_adapter.RUN_END
    assert "intent-end" in kinds
    for event in run.events:
        assert dt_util.parse_datetime(event.timestamp) is not None
        assert event.data is None or isinstance(event.data, dict)

    ended: list[EndedRun] = []
    watch = RunWatch(hass)
    watch.async_start([pipeline.id], ended.append)
    assert _debug(hass, pipeline.id) is not slot
    assert list(_debug(hass, pipeline.id)) == list(slot)  # the runs there stay
    await _typed(hass_ws_client, hass, "turn off the kitchen light")
    assert len(ended) == 1
    run_id = ended[0].run_id
    assert [e.type for e in ended[0].events][-1] == ha_adapter.RUN_END
    start = ended[0].first("run-start")
    assert start is not None
    assert start.data["pipeline"] == pipeline.id
    assert start.at <= ended[0].events[-1].at
    # The run that had ended before the watch began is not reported again.
    assert [r.run_id for r in watch.ended_runs(pipeline.id)][-1] == run_id
    assert len(watch.ended_runs(pipeline.id)) == 2

    watch.async_stop()
    plain = _debug(hass, pipeline.id)
    assert type(plain) is LimitedSizeDict
    assert plain.size_limit == ha_adapter.STORED_PIPELINE_RUNS
    assert all(type(r.events) is list for r in plain.values())
    await _typed(hass_ws_client, hass, "turn on the kitchen light")
    assert len(ended) == 1  # stopped: nothing heard any more
    assert len(plain) == 3  # Home Assistant fills its own dict again
    assert watch.async_forget(pipeline.id, {run_id}) == 1
    assert run_id not in _debug(hass, pipeline.id)
    assert watch.async_forget(pipeline.id) == 2
    assert not _debug(hass, pipeline.id)


@pytest.mark.parametrize("how", ["failed_first_setup", "reload"])
async def test_setup_with_runs_in_the_history(
    hass: HomeAssistant,
    stub_home: StubHome,
    hass_ws_client: WebSocketGenerator,
    how: str,
) -> None:
    """Runs made while the entry was not loaded do not stop its next setup."""
    entry = stub_home.entry
    pipeline = async_get_pipeline(hass)
    await async_set_assistant(hass, entry, keep_debug_runs=True)
    await hass.async_block_till_done()
    commands = CommandEvents(hass)
    if how == "reload":
        await _typed(hass_ws_client, hass, "turn on the kitchen light")
        await commands.number(1)
        assert len(_debug(hass, pipeline.id)) == 1
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
    else:
        assert await hass.config_entries.async_unload(entry.entry_id)
        for server in (stub_home.stt, stub_home.tts, stub_home.wake):
            await server.async_stop()
        assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.SETUP_RETRY
        # The pipeline is still there and still preferred: a run uses it.
        await _typed(hass_ws_client, hass, "turn on the kitchen light")
        assert type(_debug(hass, pipeline.id)) is LimitedSizeDict
        assert len(_debug(hass, pipeline.id)) == 1
        for server in (stub_home.stt, stub_home.tts, stub_home.wake):
            await server.async_start()
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
        await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert len(_debug(hass, pipeline.id)) == 1  # kept, as the assistant says
    before = len(commands.events)
    await _typed(hass_ws_client, hass, "turn off the kitchen light")
    data = await commands.number(before + 1)
    assert data["pipeline_id"] == pipeline.id

    # Not kept: the next reload removes what ended meanwhile.
    await async_set_assistant(hass, entry, keep_debug_runs=False)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert not _debug(hass, pipeline.id)
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert type(_debug(hass, pipeline.id)) is LimitedSizeDict


async def test_tts_file_cache_as_replies_are_forgotten(
    hass: HomeAssistant, stub_home: StubHome
) -> None:
    """Reply files are named in the manager's file_cache under keys ending in the engine."""
    subentry_id = assistant_subentry(stub_home.entry).subentry_id
    engine = entity_id(hass, "tts", f"{subentry_id}-tts")
    manager = hass.data[DATA_TTS_MANAGER]
    language = async_get_pipeline(hass).tts_language
    media_id = tts.generate_media_source_id(
        hass, "A reply to forget.", engine, language, cache=True
    )
    await tts.async_get_media_source_audio(hass, media_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    keys = [k for k in manager.file_cache if k.endswith(f"_{engine}")]
    assert len(keys) == 1
    path = Path(manager.cache_dir) / manager.file_cache[keys[0]]
    assert path.is_file()

    assert await async_forget_replies(hass, {"tts.someone_else"}) == 0
    assert path.is_file()
    assert await async_forget_replies(hass, {engine}) == 1
    assert not path.exists()
    assert keys[0] not in manager.file_cache
    assert await async_forget_replies(hass, {engine}) == 0


async def test_debug_recording_dir_is_read_from_the_configuration(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """`assist_pipeline: debug_recording_dir:` is where Home Assistant keeps audio."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(
        hass,
        "assist_pipeline",
        {"assist_pipeline": {"debug_recording_dir": str(tmp_path)}},
    )
    assert debug_recording_dir(hass) == str(tmp_path)


async def test_debug_recording_dir_is_none_without_it(
    voice_hass: HomeAssistant,
) -> None:
    """Without the option nothing is recorded."""
    assert debug_recording_dir(voice_hass) is None


async def test_default_agent_matches_without_acting(
    voice_hass: HomeAssistant, demo_home: None
) -> None:
    """The agent's sentences, an intent match and a sentence trigger, nothing done."""
    hass = voice_hass
    templates = await async_agent_sentences(hass, "en")
    assert any("turn" in t for t in templates)
    assert await async_agent_sentences(hass, "xx") == []
    intents = await async_agent_intents(hass, "en")
    assert intents is not None
    assert "HassTurnOn" in intents.intents
    assert "the" in intents.expansion_rules
    assert await async_agent_intents(hass, "xx") is None

    found = await async_match_intent(
        hass,
        conversation_input("turn on the kitchen light", "en", "check"),
        strict=True,
    )
    assert found is not None
    assert found.intent.name == "HassTurnOn"
    assert hass.states.get(LIGHT).state == "off"
    assert (
        await async_match_intent(
            hass, conversation_input("paint the moon", "en", "check"), strict=False
        )
        is None
    )

    fired: list[Any] = []
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "trigger": {"platform": "conversation", "command": "good night house"},
                "action": {"event": "good_night"},
            }
        },
    )
    hass.bus.async_listen("good_night", fired.append)
    await hass.async_block_till_done()
    check = conversation_input("good night house", "en", "check")
    assert await async_match_sentence_trigger(hass, check)
    assert not await async_match_sentence_trigger(
        hass, conversation_input("good morning house", "en", "check")
    )
    await hass.async_block_till_done()
    assert fired == []
