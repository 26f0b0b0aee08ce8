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

from .coordinator import LocalVoiceConfigEntry
from .entity import ProviderEntity, async_add_provider_entities
from .provider import Provider

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LatencyDescription(SensorEntityDescription):
    """A latency figure of a provider, in milliseconds."""

    value_fn: Callable[[Provider], float | None]


SENSORS = (
    LatencyDescription(
        key="probe_latency",
        translation_key="probe_latency",
        entity_registry_enabled_default=False,
        value_fn=lambda provider: provider.probe_latency_ms,
    ),
    LatencyDescription(
        key="request_latency",
        translation_key="request_latency",
        entity_registry_enabled_default=False,
        value_fn=lambda provider: provider.last_request_latency_ms,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocalVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the latency sensors of every provider."""
    async_add_provider_entities(
        entry,
        async_add_entities,
        lambda coordinator: [
            ProviderLatency(coordinator, description) for description in SENSORS
        ],
    )


class ProviderLatency(ProviderEntity, SensorEntity):
    """How long the server took, in milliseconds.

    Disabled by default: figures for troubleshooting that would otherwise be
    recorded every 30 seconds for every server.
    """

    _attr_device_class = SensorDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.MILLISECONDS
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_suggested_display_precision = 0
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    entity_description: LatencyDescription

    @property
    def available(self) -> bool:
        """Follow the provider's health."""
        return self.coordinator.provider.available

    @property
    def native_value(self) -> float | None:
        """Return the latest figure."""
        return self.entity_description.value_fn(self.coordinator.provider)
