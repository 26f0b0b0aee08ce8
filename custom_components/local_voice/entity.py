"""Base entity for the speech services of a provider or an assistant."""

from __future__ import annotations

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .chain import Chain
from .const import DOMAIN
from .coordinator import ProviderCoordinator


def provider_device(coordinator: ProviderCoordinator) -> DeviceInfo:
    """Return the device of a Wyoming server."""
    provider = coordinator.provider
    return DeviceInfo(
        identifiers={(DOMAIN, provider.subentry_id)},
        name=coordinator.config_entry.subentries[provider.subentry_id].title,
        manufacturer="Wyoming",
        model=provider.offer.name,
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
        for coordinator in self.chain.coordinators:
            if isinstance(coordinator, ProviderCoordinator):
                self.async_on_remove(coordinator.async_add_listener(self._on_health))

    @callback
    def _on_health(self) -> None:
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Follow the provider's health: probes and real requests."""
        return self.chain.available
