"""Connectivity of each provider, as a diagnostic binary sensor."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from . import LocalVoiceConfigEntry
from .coordinator import ProviderCoordinator
from .entity import provider_device

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocalVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a connectivity sensor per provider."""
    for subentry_id, coordinator in entry.runtime_data.providers.items():
        async_add_entities(
            [ProviderConnectivity(coordinator)], config_subentry_id=subentry_id
        )


class ProviderConnectivity(CoordinatorEntity[ProviderCoordinator], BinarySensorEntity):
    """On while the server answers its probes and requests."""

    _attr_has_entity_name = True
    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, coordinator: ProviderCoordinator) -> None:
        """Attach to the provider's device."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.provider.subentry_id}-connectivity"
        self._attr_device_info = provider_device(coordinator)

    @property
    def available(self) -> bool:
        """Always report: being down is the news."""
        return True

    @property
    def is_on(self) -> bool:
        """Return True when the server is up."""
        return self.coordinator.provider.available
