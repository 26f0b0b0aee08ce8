"""Connectivity of each provider, as a diagnostic binary sensor."""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory

from .entity import ProviderEntity, assistant_device, status_platform, unique_id
from .models import LocalVoiceConfigEntry

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="connectivity",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
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
        return self.coordinator.data.available


class AssistantStaysLocal(BinarySensorEntity):
    """On while nothing of the assistant's voice leaves the home.

    Its attributes name the stages that do (cloud_stages) and the servers
    reached over the network without encryption (notes).
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_translation_key = "stays_local"

    def __init__(self, entry: LocalVoiceConfigEntry, subentry_id: str) -> None:
        """Attach to the assistant's device."""
        self._audit = entry.runtime_data.audit
        self._subentry_id = subentry_id
        self._attr_unique_id = unique_id(subentry_id, "stays_local")
        self._attr_device_info = assistant_device(entry.subentries[subentry_id])

    async def async_added_to_hass(self) -> None:
        """Follow the audit."""
        await super().async_added_to_hass()
        self.async_on_remove(self._audit.async_add_listener(self.async_write_ha_state))

    @property
    def is_on(self) -> bool | None:
        """Return True when every stage stays in the home."""
        report = self._audit.reports.get(self._subentry_id)
        return report.local if report else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the stages that leave the home, and the notes."""
        report = self._audit.reports.get(self._subentry_id)
        if report is None:
            return {}
        data = report.as_dict()
        return {
            "cloud_stages": data["cloud_stages"],
            "unknown_stages": data["unknown_stages"],
            "notes": data["notes"],
        }


async_setup_entry = status_platform(
    lambda coordinator: [ProviderConnectivity(coordinator, CONNECTIVITY)],
    lambda entry, subentry: [AssistantStaysLocal(entry, subentry.subentry_id)],
)
