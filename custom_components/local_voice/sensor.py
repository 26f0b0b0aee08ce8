"""Latency of each provider: probe round trip and last real request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from . import LocalVoiceConfigEntry
from .coordinator import ProviderCoordinator
from .entity import provider_device
from .provider import Provider

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LatencyDescription(SensorEntityDescription):
    """A latency figure of a provider."""

    value: Callable[[Provider], float | None]


SENSORS = (
    LatencyDescription(
        key="probe_latency",
        translation_key="probe_latency",
        value=lambda provider: provider.probe_latency_ms,
    ),
    LatencyDescription(
        key="request_latency",
        translation_key="request_latency",
        value=lambda provider: provider.last_request_latency_ms,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocalVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the latency sensors of every provider."""
    for subentry_id, coordinator in entry.runtime_data.providers.items():
        async_add_entities(
            [ProviderLatency(coordinator, description) for description in SENSORS],
            config_subentry_id=subentry_id,
        )


class ProviderLatency(CoordinatorEntity[ProviderCoordinator], SensorEntity):
    """How long the server took, in milliseconds."""

    _attr_has_entity_name = True
    _attr_device_class = SensorDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.MILLISECONDS
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_suggested_display_precision = 0
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    entity_description: LatencyDescription

    def __init__(
        self, coordinator: ProviderCoordinator, description: LatencyDescription
    ) -> None:
        """Attach to the provider's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.provider.subentry_id}-{description.key}"
        self._attr_device_info = provider_device(coordinator)

    @property
    def available(self) -> bool:
        """Follow the provider's health."""
        return self.coordinator.provider.available

    @property
    def native_value(self) -> float | None:
        """Return the latest figure."""
        return self.entity_description.value(self.coordinator.provider)
