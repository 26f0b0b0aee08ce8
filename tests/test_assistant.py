"""The assistant and its Assist pipeline, against the real servers."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.assist_pipeline.pipeline import (
    Pipeline,
    async_get_pipeline,
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice.const import DOMAIN, SUBENTRY_ASSISTANT
from scripts.servers import launch
from tests.common import async_add_local_voice, async_submit_voice


def _ours(hass: HomeAssistant, name: str = "Local Voice") -> list[Pipeline]:
    return [p for p in async_get_pipelines(hass) if p.name == name]


def _assistant_id(entry: MockConfigEntry) -> str:
    return next(
        s.subentry_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_ASSISTANT
    )


async def test_defaults_give_a_preferred_pipeline(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """The newcomer's path ends with a preferred, complete local pipeline."""
    hass = voice_hass
    (pipeline,) = _ours(hass)
    assert async_get_pipeline(hass).id == pipeline.id
    assert pipeline.language == "en"
    # The assistant's own agent, in front of Home Assistant's: nothing acts
    # on a command before it could ask.
    assert pipeline.conversation_engine == "conversation.local_voice"
    assert pipeline.prefer_local_intents is False
    assert pipeline.stt_engine == "stt.local_voice_speech_to_text"
    assert pipeline.stt_language == "en"
    assert pipeline.tts_engine == "tts.local_voice_text_to_speech"
    assert pipeline.tts_language == "en-US"
    assert pipeline.tts_voice is None
    assert pipeline.wake_word_entity == "wake_word.local_voice_wake_word"
    assert pipeline.wake_word_id == "alexa"
    for entity_id in (
        pipeline.stt_engine,
        pipeline.tts_engine,
        pipeline.wake_word_entity,
    ):
        assert hass.states.get(entity_id).state != "unavailable"


async def test_restart_keeps_one_pipeline(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """Reloading finds the pipeline by id: never a second copy."""
    hass = voice_hass
    (before,) = _ours(hass)
    for _ in range(2):
        assert await hass.config_entries.async_reload(voice_entry.entry_id)
        await hass.async_block_till_done()
    (after,) = _ours(hass)
    assert after == before
    assert len(async_get_pipelines(hass)) == 2  # Home Assistant's own + ours


async def test_reconfigure_updates_the_pipeline(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """Changing the wake word and voice is written to the pipeline."""
    hass = voice_hass
    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (voice_entry.entry_id, SUBENTRY_ASSISTANT),
        context={
            "source": SOURCE_RECONFIGURE,
            "subentry_id": _assistant_id(voice_entry),
        },
    )
    assert result["step_id"] == "assistant"
    result = await flows.async_configure(result["flow_id"], {})
    result = await async_submit_voice(
        hass,
        flows,
        result,
        {
            "voice": "en_US-joe-medium",
            "wake_word": "okay_nabu",
            "conversation_engine": "conversation.home_assistant",
            "prefer_local_intents": True,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    (pipeline,) = _ours(hass)
    assert pipeline.wake_word_id == "okay_nabu"
    assert pipeline.tts_voice == "en_US-joe-medium"


async def test_language_the_servers_lack_is_refused(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """German is advertised by both servers, but neither really has it here."""
    hass = voice_hass
    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (voice_entry.entry_id, SUBENTRY_ASSISTANT), context={"source": SOURCE_USER}
    )
    assert result["step_id"] == "assistant"
    # Languages outside what all three share are not even offered.
    with pytest.raises(InvalidData):
        await flows.async_configure(
            result["flow_id"], {"name": "Deutsch", "language": "zu"}
        )

    result = await flows.async_configure(
        result["flow_id"], {"name": "Deutsch", "language": "de"}
    )
    assert result["step_id"] == "voice"
    # Piper's own voice is English: Whisper does not hear German in it.
    result = await async_submit_voice(hass, flows, result, {"wake_word": "none"})
    assert result["errors"] == {"base": "language_check_failed"}
    assert result["description_placeholders"]["sentence"].startswith("Schalte")
    # A German voice is in Piper's catalogue but not on this disk.
    result = await async_submit_voice(
        hass, flows, result, {"voice": "de_DE-thorsten-medium", "wake_word": "none"}
    )
    assert result["errors"] == {"base": "tts_check_failed"}
    # The voice is no longer offered once the server has said it lacks it.
    with pytest.raises(InvalidData):
        await flows.async_configure(
            result["flow_id"], {"voice": "de_DE-thorsten-medium", "wake_word": "none"}
        )
    assert len(async_get_pipelines(hass)) == 2


async def test_second_assistant_and_unique_names(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """A second assistant gets its own pipeline; names stay unique."""
    hass = voice_hass
    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (voice_entry.entry_id, SUBENTRY_ASSISTANT), context={"source": SOURCE_USER}
    )
    result = await flows.async_configure(result["flow_id"], {"name": "Local Voice"})
    assert result["errors"] == {"name": "name_exists"}
    result = await flows.async_configure(
        result["flow_id"], {"name": "Bedroom", "preferred": False}
    )
    result = await async_submit_voice(hass, flows, result, {"wake_word": "hey_jarvis"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (bedroom,) = _ours(hass, "Bedroom")
    assert bedroom.wake_word_id == "hey_jarvis"
    assert async_get_pipeline(hass).name == "Local Voice"


async def test_removing_the_assistant_restores_preferred(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """The pipeline goes and the previously preferred pipeline is back."""
    hass = voice_hass
    others = [p for p in async_get_pipelines(hass) if p.name != "Local Voice"]
    assert len(others) == 1
    hass.config_entries.async_remove_subentry(voice_entry, _assistant_id(voice_entry))
    await hass.async_block_till_done()
    assert _ours(hass) == []
    assert async_get_pipeline(hass).id == others[0].id


async def test_removing_the_integration_removes_its_pipelines(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """Deleting Local Voice leaves Home Assistant as it found it."""
    hass = voice_hass
    (other,) = [p for p in async_get_pipelines(hass) if p.name != "Local Voice"]
    assert await hass.config_entries.async_remove(voice_entry.entry_id)
    await hass.async_block_till_done()
    assert [p.id for p in async_get_pipelines(hass)] == [other.id]
    assert async_get_pipeline(hass).id == other.id


async def test_hand_edit_is_kept_and_repair_restores(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """A hand edit survives a restart; the repair puts the assistant's back."""
    hass = voice_hass
    (pipeline,) = _ours(hass)
    await async_update_pipeline(hass, pipeline, wake_word_id="hey_mycroft")
    await hass.async_block_till_done()
    issue_id = f"pipeline_modified_{_assistant_id(voice_entry)}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    assert await hass.config_entries.async_reload(voice_entry.entry_id)
    await hass.async_block_till_done()
    (pipeline,) = _ours(hass)
    assert pipeline.wake_word_id == "hey_mycroft"

    await _fix(hass, issue_id)
    (pipeline,) = _ours(hass)
    assert pipeline.wake_word_id == "alexa"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_hand_delete_is_kept_and_repair_recreates(
    voice_hass: HomeAssistant, voice_entry: MockConfigEntry
) -> None:
    """A deleted pipeline is not silently recreated; the repair does it."""
    hass = voice_hass
    from homeassistant.components.assist_pipeline.pipeline import (
        async_setup_pipeline_store,
    )

    store = (await async_setup_pipeline_store(hass)).pipeline_store
    (pipeline,) = _ours(hass)
    (other,) = [p for p in async_get_pipelines(hass) if p.name != "Local Voice"]
    store.async_set_preferred_item(other.id)
    await store.async_delete_item(pipeline.id)
    await hass.async_block_till_done()
    issue_id = f"pipeline_deleted_{_assistant_id(voice_entry)}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    assert await hass.config_entries.async_reload(voice_entry.entry_id)
    await hass.async_block_till_done()
    assert _ours(hass) == []

    await _fix(hass, issue_id)
    assert len(_ours(hass)) == 1


async def _fix(hass: HomeAssistant, issue_id: str) -> None:
    """Run a repair's fix flow and confirm it."""
    assert await async_setup_component(hass, "repairs", {})
    flow_manager = repairs_flow_manager(hass)
    assert flow_manager is not None
    result = await flow_manager.async_init(DOMAIN, data={"issue_id": issue_id})
    assert result["step_id"] == "confirm"
    result = await flow_manager.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_pipeline_follows_the_servers_offer(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    tmp_path: Path,
) -> None:
    """A wake word server that drops "alexa" moves the pipeline to "okay_nabu",
    and back when it returns; the assistant's setting stays "alexa"."""
    hass = voice_hass
    port = launch.free_port()
    command = [launch.speech_python(), "-m", "scripts.servers.wakeword"]
    server = launch.start("wake-all", command, port, tmp_path)
    try:
        launch.wait_ready([server], timeout=60)
        entry = await async_add_local_voice(hass, scan_ports, piper, whisper, port)
        (pipeline,) = _ours(hass)
        assert pipeline.wake_word_id == "alexa"

        server.stop()
        server = launch.start(
            "wake-nabu", [*command, "--model", "okay_nabu"], port, tmp_path
        )
        launch.wait_ready([server], timeout=60)
        coordinator = entry.runtime_data.providers[
            entry.runtime_data.assistants[_assistant_id(entry)].settings.wake_providers[
                0
            ]
        ]
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        (pipeline,) = _ours(hass)
        assert pipeline.wake_word_id == "okay_nabu"
        assert entry.subentries[_assistant_id(entry)].data["wake_word"] == "alexa"
        assert ir.async_get(hass).issues == {}

        server.stop()
        server = launch.start("wake-all-again", command, port, tmp_path)
        launch.wait_ready([server], timeout=60)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        (pipeline,) = _ours(hass)
        assert pipeline.wake_word_id == "alexa"
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        server.stop()
