"""Local Voice: local Wyoming speech services as a private Assist voice assistant."""

from __future__ import annotations

import asyncio

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, entity_registry as er
from homeassistant.helpers.typing import ConfigType

from .assistant import Assistant
from .const import DOMAIN, SUBENTRY_ASSISTANT, SUBENTRY_PROVIDER
from .coordinator import LocalVoiceConfigEntry, LocalVoiceData, ProviderCoordinator
from .pipeline import DATA_PIPELINES, PipelineManager
from .privacy import PrivacyAudit
from .provider import Provider, provider_title
from .sync import async_sync_assistant

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.SENSOR,
    Platform.STT,
    Platform.TTS,
    Platform.WAKE_WORD,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Load what is remembered of the assistants' pipelines, once."""
    hass.data[DATA_PIPELINES] = await PipelineManager.async_load(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: LocalVoiceConfigEntry) -> bool:
    """Probe the providers, set up the entities, then the assistants' pipelines."""
    coordinators = {
        subentry.subentry_id: ProviderCoordinator(
            hass, entry, Provider.from_subentry(subentry)
        )
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_PROVIDER
    }
    await asyncio.gather(*(c.async_refresh() for c in coordinators.values()))
    if coordinators and not any(c.last_update_success for c in coordinators.values()):
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="no_provider_reachable",
            translation_placeholders={
                "addresses": ", ".join(
                    c.provider.address for c in coordinators.values()
                )
            },
        )
    assistants = {
        subentry.subentry_id: Assistant.from_subentry(subentry, coordinators)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_ASSISTANT
    }

    def providers_of(entity_id: str) -> list[Provider]:
        """Return the servers behind one of this entry's speech entities."""
        registered = er.async_get(hass).async_get(entity_id)
        subentry_id = registered.config_subentry_id if registered else None
        if registered is None or subentry_id is None:
            return []
        if subentry_id in coordinators:
            return [coordinators[subentry_id].provider]
        if (assistant := assistants.get(subentry_id)) is None:
            return []
        chain = {"stt": assistant.stt, "tts": assistant.tts}.get(
            registered.domain, assistant.wake
        )
        return [member.provider for member in chain.members]

    audit = PrivacyAudit(hass, entry, providers_of)
    entry.runtime_data = LocalVoiceData(coordinators, assistants, audit)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)

    manager = hass.data[DATA_PIPELINES]
    await manager.async_remove_missing(set(assistants))
    for assistant in assistants.values():
        await async_sync_assistant(hass, assistant)
    entry.async_on_unload(manager.async_listen())
    entry.async_on_unload(audit.async_start())

    @callback
    def offer_changed(provider_id: str) -> None:
        """A server's offer changed: bring the pipelines that use it up to date."""
        for assistant in assistants.values():
            if provider_id in assistant.provider_ids:
                entry.async_create_task(hass, async_sync_assistant(hass, assistant))

    for coordinator in coordinators.values():
        entry.async_on_unload(coordinator.async_add_offer_listener(offer_changed))
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_change))
    return True


async def _async_reload_on_change(
    hass: HomeAssistant, entry: LocalVoiceConfigEntry
) -> None:
    """Subentries were added, changed or removed: rebuild everything."""
    hass.config_entries.async_schedule_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: LocalVoiceConfigEntry) -> bool:
    """Unload the entities; the pipelines stay, as the user's assistants."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: LocalVoiceConfigEntry) -> None:
    """The integration is removed: its pipelines and storage go, "preferred" goes back.

    The component may never have been set up in this run (a disabled entry),
    so the manager is loaded here when setup did not do it.
    """
    manager = hass.data.get(DATA_PIPELINES) or await PipelineManager.async_load(hass)
    await manager.async_remove_missing(set())
    await manager.async_remove_storage()


async def async_migrate_entry(
    hass: HomeAssistant, entry: LocalVoiceConfigEntry
) -> bool:
    """1.1 -> 1.2: provider titles (and so device names) lose the address."""
    if entry.version > 1:
        return False
    if entry.minor_version < 2:
        taken: set[str] = set()
        for subentry in list(entry.subentries.values()):
            if subentry.subentry_type != SUBENTRY_PROVIDER:
                continue
            title = provider_title(Provider.from_subentry(subentry), taken)
            taken.add(title)
            hass.config_entries.async_update_subentry(entry, subentry, title=title)
        hass.config_entries.async_update_entry(entry, minor_version=2)
    return True
