"""Local Voice: local Wyoming speech services as a private Assist voice assistant."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PORT, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from wyoming.event import Event
from wyoming.info import Info

from .assistant import Assistant, AssistantSettings
from .chain import SttChain, TtsChain, WakeChain
from .const import CONF_INFO, DOMAIN, SUBENTRY_ASSISTANT, SUBENTRY_PROVIDER
from .coordinator import ProviderCoordinator
from .pipeline import PipelineManager
from .provider import Provider, offer_from_info
from .sync import async_get_manager, async_sync_assistant

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.SENSOR,
    Platform.STT,
    Platform.TTS,
    Platform.WAKE_WORD,
]


@dataclass(slots=True)
class LocalVoiceData:
    """What a loaded entry keeps at run time."""

    providers: dict[str, ProviderCoordinator]
    assistants: dict[str, Assistant]
    manager: PipelineManager


type LocalVoiceConfigEntry = ConfigEntry[LocalVoiceData]


def provider_from_subentry(subentry: ConfigSubentry) -> Provider:
    """Build a provider from its subentry, with the offer saved when it was added."""
    info = Info.from_event(Event(type="info", data=dict(subentry.data[CONF_INFO])))
    return Provider(
        subentry_id=subentry.subentry_id,
        host=subentry.data[CONF_HOST],
        port=subentry.data[CONF_PORT],
        info=info,
        offer=offer_from_info(info),
    )


def assistant_from_subentry(
    subentry: ConfigSubentry, providers: dict[str, ProviderCoordinator]
) -> Assistant:
    """Build an assistant's chains from the providers it names, in order."""
    settings = AssistantSettings.from_data(subentry.data)

    def chain(ids: tuple[str, ...]) -> list[ProviderCoordinator]:
        return [providers[i] for i in ids if i in providers]

    return Assistant(
        subentry_id=subentry.subentry_id,
        settings=settings,
        stt=SttChain(chain(settings.stt_providers)),
        tts=TtsChain(chain(settings.tts_providers)),
        wake=WakeChain(chain(settings.wake_providers)),
    )


async def async_setup_entry(hass: HomeAssistant, entry: LocalVoiceConfigEntry) -> bool:
    """Probe the providers, set up the entities, then the assistants' pipelines."""
    coordinators = {
        subentry.subentry_id: ProviderCoordinator(
            hass, entry, provider_from_subentry(subentry)
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
        subentry.subentry_id: assistant_from_subentry(subentry, coordinators)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_ASSISTANT
    }
    manager = await async_get_manager(hass)
    entry.runtime_data = LocalVoiceData(coordinators, assistants, manager)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)

    await manager.async_remove_missing(set(assistants))
    for assistant in assistants.values():
        await async_sync_assistant(hass, entry, assistant)
    entry.async_on_unload(manager.async_listen())

    @callback
    def offer_changed(provider_id: str) -> None:
        """A server's offer changed: bring the pipelines that use it up to date."""
        for assistant in assistants.values():
            if provider_id in (
                *assistant.settings.stt_providers,
                *assistant.settings.tts_providers,
                *assistant.settings.wake_providers,
            ):
                entry.async_create_task(
                    hass, async_sync_assistant(hass, entry, assistant)
                )

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
    """The integration is removed: remove its pipelines, hand "preferred" back."""
    manager = await async_get_manager(hass)
    await manager.async_remove_missing(set())
