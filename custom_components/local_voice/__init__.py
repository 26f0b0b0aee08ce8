"""Local Voice: local Wyoming speech services as a private Assist voice assistant."""

from __future__ import annotations

import asyncio
from functools import partial

from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.typing import ConfigType

from .assistant import Assistant
from .closest import CommandSpace
from .command_log import CommandLog
from .const import DOMAIN, SUBENTRY_ASSISTANT, SUBENTRY_PROVIDER
from .coordinator import ProviderCoordinator
from .grammar import Grammar
from .ha_adapter import RunWatch, debug_recording_dir
from .issues import async_raise_issue
from .models import LocalVoiceConfigEntry, LocalVoiceData
from .names import NameRepair
from .pipeline import DATA_PIPELINES, PipelineManager
from .privacy import PrivacyAudit
from .provider import Provider, provider_title
from .retention import Kept, Retention
from .services import async_setup_services
from .sync import assistant_entity_id, async_sync_assistant, is_own_agent
from .understanding import Understanding
from .wake_check import WakeLog

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.CONVERSATION,
    Platform.SENSOR,
    Platform.STT,
    Platform.TTS,
    Platform.WAKE_WORD,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

ISSUE_DEBUG_RECORDING = "debug_recording"


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Load what is remembered of the assistants' pipelines; register the actions."""
    hass.data[DATA_PIPELINES] = await PipelineManager.async_load(hass)
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: LocalVoiceConfigEntry) -> bool:
    """Probe the providers, set up the entities, then the assistants' pipelines."""
    coordinators = await _async_probe_providers(hass, entry)
    data = entry.runtime_data = _runtime_data(hass, entry, coordinators)
    _follow_debug_recording(hass)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)

    manager = hass.data[DATA_PIPELINES]
    await manager.async_remove_missing(set(data.assistants))
    for assistant in data.assistants.values():
        await async_sync_assistant(hass, assistant)
    data.runs.async_start(
        [kept.pipeline_id for kept in _kept(hass, data.assistants)],
        data.command_log.async_ended,
    )
    data.retention.async_start()
    entry.async_on_unload(_stop_services(data))
    entry.async_on_unload(manager.async_listen())
    entry.async_on_unload(await data.audit.async_start())

    @callback
    def offer_changed(provider_id: str) -> None:
        """A server's offer changed: bring the pipelines that use it up to date."""
        for assistant in data.assistants.values():
            if provider_id in assistant.provider_ids:
                entry.async_create_task(hass, async_sync_assistant(hass, assistant))

    for coordinator in coordinators.values():
        entry.async_on_unload(coordinator.async_add_offer_listener(offer_changed))
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_change))
    return True


async def _async_probe_providers(
    hass: HomeAssistant, entry: LocalVoiceConfigEntry
) -> dict[str, ProviderCoordinator]:
    """Probe every provider once; not ready while none of them answers."""
    coordinators = {
        subentry.subentry_id: ProviderCoordinator(
            hass, entry, Provider.from_subentry(subentry)
        )
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_PROVIDER
    }
    await asyncio.gather(*(c.async_refresh() for c in coordinators.values()))
    if coordinators and not any(c.last_update_success for c in coordinators.values()):
        await _async_hand_back_agents(hass)
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="no_provider_reachable",
            translation_placeholders={
                "addresses": ", ".join(
                    c.provider.address for c in coordinators.values()
                )
            },
        )
    return coordinators


def _runtime_data(
    hass: HomeAssistant,
    entry: LocalVoiceConfigEntry,
    coordinators: dict[str, ProviderCoordinator],
) -> LocalVoiceData:
    """Build the assistants and the services the entry's entities are handed."""
    assistants = {
        subentry.subentry_id: Assistant.from_subentry(subentry, coordinators)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_ASSISTANT
    }
    for subentry_id, assistant in assistants.items():
        assistant.wakes = WakeLog(hass, subentry_id)
    kept = partial(_kept, hass, assistants)
    runs = RunWatch(hass)
    retention = Retention(hass, kept, runs)
    names = NameRepair(hass)
    return LocalVoiceData(
        providers=coordinators,
        assistants=assistants,
        audit=PrivacyAudit(hass, entry),
        names=names,
        grammar=Grammar(hass),
        understanding=Understanding(hass, names, CommandSpace(hass)),
        runs=runs,
        command_log=CommandLog(hass, kept, retention.async_reported),
        retention=retention,
    )


def _kept(hass: HomeAssistant, assistants: dict[str, Assistant]) -> list[Kept]:
    """Return what each assistant allows to be kept, with its pipeline."""
    manager = hass.data[DATA_PIPELINES]
    result = []
    for subentry_id, assistant in assistants.items():
        if (pipeline_id := manager.pipeline_id(subentry_id)) is None:
            continue
        settings = assistant.settings
        result.append(
            Kept(
                assistant_id=subentry_id,
                pipeline_id=pipeline_id,
                pipeline_name=settings.name,
                tts_engine=assistant_entity_id(hass, "tts", subentry_id),
                tts_seconds=settings.tts_cache_seconds,
                keep_runs=settings.keep_debug_runs,
                command_text=settings.command_text,
            )
        )
    return result


def _stop_services(data: LocalVoiceData) -> CALLBACK_TYPE:
    """Return what stops the services at unload, runs heard first."""

    @callback
    def stop() -> None:
        data.runs.async_stop()
        data.command_log.async_stop()
        data.retention.async_stop()
        data.understanding.forget()

    return stop


@callback
def _follow_debug_recording(hass: HomeAssistant) -> None:
    """Warn while Home Assistant records every command as audio."""
    if debug_recording_dir(hass):
        async_raise_issue(hass, ISSUE_DEBUG_RECORDING, ISSUE_DEBUG_RECORDING, {})
    else:
        ir.async_delete_issue(hass, DOMAIN, ISSUE_DEBUG_RECORDING)


async def _async_reload_on_change(
    hass: HomeAssistant, entry: LocalVoiceConfigEntry
) -> None:
    """Subentries were added, changed or removed: rebuild everything."""
    hass.config_entries.async_schedule_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: LocalVoiceConfigEntry) -> bool:
    """Unload the entities and remove the assistants' reply files.

    The pipelines stay, as the user's assistants.
    """
    await entry.runtime_data.retention.async_forget_replies()
    for assistant in entry.runtime_data.assistants.values():
        await assistant.wakes.async_stop()
    if not hass.is_stopping:
        await _async_hand_back_agents(hass)
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def _async_hand_back_agents(hass: HomeAssistant) -> None:
    """Point the pipelines at Home Assistant's agent while the assistants' are away."""
    await hass.data[DATA_PIPELINES].async_hand_back_agent(partial(is_own_agent, hass))


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
