"""Base entity for the speech services of a provider or an assistant."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .assistant import Assistant
from .chain import Chain
from .const import DOMAIN
from .coordinator import ProviderCoordinator
from .models import LocalVoiceConfigEntry, LocalVoiceData


def unique_id(subentry_id: str, key: str) -> str:
    """Return the unique id of a subentry's entity: its key is the entity's kind.

    The speech entities' keys are their services (stt, tts, wake_word).
    """
    return f"{subentry_id}-{key}"


def provider_device(coordinator: ProviderCoordinator) -> DeviceInfo:
    """Return the device of a Wyoming server; its address is the hardware detail."""
    provider = coordinator.provider
    return DeviceInfo(
        identifiers={(DOMAIN, provider.subentry_id)},
        name=coordinator.config_entry.subentries[provider.subentry_id].title,
        manufacturer="Wyoming",
        model=provider.offer.name,
        hw_version=provider.address,
        entry_type=DeviceEntryType.SERVICE,
    )


def assistant_device(subentry: ConfigSubentry) -> DeviceInfo:
    """Return the device of an assistant."""
    return DeviceInfo(
        identifiers={(DOMAIN, subentry.subentry_id)},
        name=subentry.title,
        manufacturer="Local Voice",
        model="Assistant",
        entry_type=DeviceEntryType.SERVICE,
    )


type SetupEntry = Callable[
    [HomeAssistant, LocalVoiceConfigEntry, AddConfigEntryEntitiesCallback],
    Coroutine[Any, Any, None],
]


def _platform(
    add_all: Callable[[LocalVoiceConfigEntry, AddConfigEntryEntitiesCallback], None],
) -> SetupEntry:
    """Return a platform's `async_setup_entry` that adds what `add_all` makes."""

    async def async_setup_entry(
        hass: HomeAssistant,
        entry: LocalVoiceConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        add_all(entry, async_add_entities)

    return async_setup_entry


def speech_platform[ChainT: Chain](
    service: str,
    provider_chain: Callable[[list[ProviderCoordinator]], ChainT],
    assistant_chain: Callable[[Assistant], ChainT],
    entity: Callable[[ChainT, str, DeviceInfo], LocalVoiceEntity[ChainT]],
    assistant_entity: Callable[
        [LocalVoiceData, Assistant, ChainT, str, DeviceInfo], LocalVoiceEntity[ChainT]
    ]
    | None = None,
) -> SetupEntry:
    """Return the setup of a speech platform (stt, tts, wake_word).

    It adds one entity of the service per provider offering it and one per
    assistant with providers for it. `service` is the offer's name for it
    and the key of the entities' unique ids. An assistant's entity is made
    by `assistant_entity` (handed the entry's runtime data, for the services
    it uses) when given, else like a provider's.
    """

    def add_all(
        entry: LocalVoiceConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
    ) -> None:
        data = entry.runtime_data

        def add(subentry_id: str, made: LocalVoiceEntity[ChainT]) -> None:
            data.speech_entities.append(made)
            async_add_entities([made], config_subentry_id=subentry_id)

        for subentry_id, coordinator in data.providers.items():
            if service in coordinator.provider.offer.services:
                add(
                    subentry_id,
                    entity(
                        provider_chain([coordinator]),
                        unique_id(subentry_id, service),
                        provider_device(coordinator),
                    ),
                )
        for subentry_id, assistant in data.assistants.items():
            chain = assistant_chain(assistant)
            if chain.members:
                key = unique_id(subentry_id, service)
                device = assistant_device(entry.subentries[subentry_id])
                add(
                    subentry_id,
                    assistant_entity(data, assistant, chain, key, device)
                    if assistant_entity
                    else entity(chain, key, device),
                )

    return _platform(add_all)


def status_platform(
    provider: Callable[[ProviderCoordinator], list[Entity]],
    assistant: Callable[[LocalVoiceConfigEntry, ConfigSubentry], list[Entity]],
) -> SetupEntry:
    """Return the setup of a platform of health and figures (sensor, binary_sensor).

    `provider` makes a provider's entities, `assistant` an assistant's; each
    goes under its subentry.
    """

    def add_all(
        entry: LocalVoiceConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
    ) -> None:
        data = entry.runtime_data
        for subentry_id, coordinator in data.providers.items():
            async_add_entities(provider(coordinator), config_subentry_id=subentry_id)
        for subentry_id in data.assistants:
            async_add_entities(
                assistant(entry, entry.subentries[subentry_id]),
                config_subentry_id=subentry_id,
            )

    return _platform(add_all)


class LocalVoiceEntity[ChainT: Chain](Entity):
    """A speech entity backed by a chain of providers."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, chain: ChainT, unique_id: str, device: DeviceInfo) -> None:
        """Name the entity after its device."""
        self.chain = chain
        self._attr_unique_id = unique_id
        self._attr_device_info = device

    async def async_added_to_hass(self) -> None:
        """Follow the health of every provider in the chain."""
        await super().async_added_to_hass()
        for member in self.chain.members:
            self.async_on_remove(member.async_add_listener(self._on_health))

    @callback
    def _on_health(self) -> None:
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Follow the provider's health: probes and real requests."""
        return self.chain.available


class ProviderEntity(CoordinatorEntity[ProviderCoordinator]):
    """A diagnostic entity of one provider's health."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: ProviderCoordinator, description: EntityDescription
    ) -> None:
        """Attach to the provider's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = unique_id(
            coordinator.provider.subentry_id, description.key
        )
        self._attr_device_info = provider_device(coordinator)
