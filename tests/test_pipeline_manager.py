"""The assistant's pipeline over stub servers: repairs, "preferred", storage, migration."""

from __future__ import annotations

from typing import Any

from homeassistant.components.assist_pipeline.pipeline import (
    async_get_pipeline,
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice.config_flow import async_probe
from custom_components.local_voice.const import (
    DOMAIN,
    SUBENTRY_ASSISTANT,
    SUBENTRY_PROVIDER,
)
from custom_components.local_voice.pipeline import STORAGE_KEY, pipeline_manager
from tests.common import HOST
from tests.conftest import StubHome


def _assistant_id(entry: MockConfigEntry) -> str:
    return next(
        s.subentry_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_ASSISTANT
    )


def _ours(hass: HomeAssistant) -> Any:
    (pipeline,) = [p for p in async_get_pipelines(hass) if p.name == "Local Voice"]
    return pipeline


async def test_repair_clears_when_the_edit_is_undone(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A hand edit raises the repair; putting the pipeline back clears it."""
    hass = voice_hass
    issue_id = f"pipeline_modified_{_assistant_id(stub_home.entry)}"
    pipeline = _ours(hass)
    await async_update_pipeline(hass, pipeline, wake_word_id="okay_nabu")
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    await async_update_pipeline(hass, _ours(hass), wake_word_id="alexa")
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None

    # An edit undone while Local Voice was not loaded: cleared at the next start.
    await async_update_pipeline(hass, _ours(hass), wake_word_id="okay_nabu")
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(stub_home.entry.entry_id)
    await async_update_pipeline(hass, _ours(hass), wake_word_id="alexa")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert await hass.config_entries.async_setup(stub_home.entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_preferred_is_handed_back(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """Switching "preferred" off gives the preferred pipeline back, once."""
    hass = voice_hass
    entry = stub_home.entry
    ours = _ours(hass)
    (other,) = [p for p in async_get_pipelines(hass) if p.id != ours.id]
    assert async_get_pipeline(hass).id == ours.id
    subentry = entry.subentries[_assistant_id(entry)]
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "preferred": False}
    )
    await hass.async_block_till_done()
    assert async_get_pipeline(hass).id == other.id

    # Switched on again it takes "preferred" once; the user may then move it.
    subentry = entry.subentries[_assistant_id(entry)]
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "preferred": True}
    )
    await hass.async_block_till_done()
    assert async_get_pipeline(hass).id == ours.id
    manager = pipeline_manager(hass)
    manager.pipelines.async_set_preferred_item(other.id)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert async_get_pipeline(hass).id == other.id


async def test_removal_deletes_pipelines_and_storage(
    voice_hass: HomeAssistant, stub_home: StubHome, hass_storage: dict[str, Any]
) -> None:
    """Removing Local Voice leaves no pipeline and no storage file behind."""
    hass = voice_hass
    assert STORAGE_KEY in hass_storage
    assert await hass.config_entries.async_remove(stub_home.entry.entry_id)
    await hass.async_block_till_done()
    assert [p.name for p in async_get_pipelines(hass)] == ["Home Assistant"]
    assert STORAGE_KEY not in hass_storage


async def test_migration_takes_the_address_out_of_names(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """Entries made by 0.1 named servers "piper (127.0.0.1:10200)"."""
    hass = voice_hass
    old = []
    for stub in (stub_home.stt, stub_home.tts):
        provider = await async_probe(HOST, stub.port)
        old.append(
            {
                "data": provider.as_data(),
                "subentry_type": SUBENTRY_PROVIDER,
                "title": f"{provider.offer.name} ({provider.address})",
                "unique_id": provider.address,
            }
        )
    assistant = next(
        s
        for s in stub_home.entry.subentries.values()
        if s.subentry_type == SUBENTRY_ASSISTANT
    )
    old.append(
        {
            "data": dict(assistant.data),
            "subentry_type": SUBENTRY_ASSISTANT,
            "title": assistant.title,
            "unique_id": None,
        }
    )
    await hass.config_entries.async_remove(stub_home.entry.entry_id)
    entry = MockConfigEntry(
        domain=DOMAIN, version=1, minor_version=1, data={}, subentries_data=old
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.minor_version == 2
    assert sorted(s.title for s in entry.subentries.values()) == [
        "Local Voice",
        "faster-whisper",
        "piper",
    ]
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert sorted(d.name or "" for d in devices) == [
        "Local Voice",
        "faster-whisper",
        "piper",
    ]
    assert {d.hw_version for d in devices if d.model != "Assistant"} == {
        f"{HOST}:{stub_home.stt.port}",
        f"{HOST}:{stub_home.tts.port}",
    }


async def test_an_entry_from_a_newer_version_is_refused(
    voice_hass: HomeAssistant,
) -> None:
    """Downgrading Local Voice leaves a newer entry alone instead of breaking it."""
    entry = MockConfigEntry(domain=DOMAIN, version=2, minor_version=1, data={})
    entry.add_to_hass(voice_hass)
    assert not await voice_hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
