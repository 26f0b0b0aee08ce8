"""Connectivity of each provider, as a diagnostic binary sensor."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import LocalVoiceConfigEntry
from .entity import ProviderEntity, async_add_provider_entities

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="connectivity",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocalVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a connectivity sensor per provider."""
    async_add_provider_entities(
        entry,
        async_add_entities,
        lambda coordinator: [ProviderConnectivity(coordinator, CONNECTIVITY)],
    )


class ProviderConnectivity(ProviderEntity, BinarySensorEntity):
    """On while the server answers its probes and requests."""

    @property
    def available(self) -> bool:
        """Always report: being down is the news."""
        return True

    @property
    def is_on(self) -> bool:
        """Return True when the server is up."""
        return self.coordinator.provider.available
