"""Latency figures: each provider's, and each assistant's commands.

A provider's sensors give the probe's round trip and the last real request.
An assistant's give, after each spoken command, the time from the end of
speech to the transcript, to the agent's answer and to the first audio of
the spoken reply, and count its commands, the failed ones, the questions
asked, the commands confirmed, declined and repaired. They follow
the `local_voice_command` event (command_log.py). Three more count its wakes,
the wakes the second check dropped and those that led to no command
(the `local_voice_wake` event, wake_check.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import Event, callback

from .command_log import EVENT_COMMAND
from .entity import ProviderEntity, assistant_device, status_platform, unique_id
from .provider import ProviderHealth
from .wake_check import DETECTED, DROPPED, EVENT_WAKE, NO_COMMAND

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LatencyDescription(SensorEntityDescription):
    """A latency figure of a provider, in milliseconds."""

    value_fn: Callable[[ProviderHealth], float | None]


SENSORS = (
    LatencyDescription(
        key="probe_latency",
        translation_key="probe_latency",
        entity_registry_enabled_default=False,
        value_fn=lambda health: health.probe_latency_ms,
    ),
    LatencyDescription(
        key="request_latency",
        translation_key="request_latency",
        entity_registry_enabled_default=False,
        value_fn=lambda health: health.last_request_latency_ms,
    ),
)


# An assistant's figures: the event's key of each.
COMMAND_LATENCIES = (
    "speech_to_transcript",
    "speech_to_intent",
    "speech_to_first_audio",
)
COMMANDS = "commands"
FAILED_COMMANDS = "failed_commands"
QUESTIONS = "questions"
CONFIRMED = "confirmed_commands"
DECLINED = "declined_commands"
REPAIRED = "repaired_commands"
# Which commands each count takes, by the command's event.
COUNTED: dict[str, Callable[[dict[str, object]], bool]] = {
    COMMANDS: lambda data: True,
    FAILED_COMMANDS: lambda data: not data.get("success"),
    QUESTIONS: lambda data: bool(data.get("asked")),
    CONFIRMED: lambda data: data.get("confirmation") == "confirmed",
    # Declined, or met with silence.
    DECLINED: lambda data: data.get("confirmation") in ("declined", "no_answer"),
    REPAIRED: lambda data: bool(data.get("repaired")),
}


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
        return self.coordinator.data.available

    @property
    def native_value(self) -> float | None:
        """Return the latest figure."""
        return self.entity_description.value_fn(self.coordinator.data)


class CommandFigure(RestoreSensor):
    """A figure of an assistant's commands, updated by each command's event."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    # The event it follows.
    _event = EVENT_COMMAND

    def __init__(self, subentry: ConfigSubentry, key: str) -> None:
        """Attach to the assistant's device."""
        self._assistant_id = subentry.subentry_id
        self._attr_translation_key = key
        self._attr_unique_id = unique_id(subentry.subentry_id, key)
        self._attr_device_info = assistant_device(subentry)

    async def async_added_to_hass(self) -> None:
        """Start from the last value and follow the assistant's commands."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_sensor_data()) is not None:
            self._attr_native_value = last.native_value

        @callback
        def mine(data: dict[str, object]) -> bool:
            return data.get("assistant_id") == self._assistant_id

        self.async_on_remove(
            self.hass.bus.async_listen(self._event, self._on_command, mine)
        )

    @callback
    def _on_command(self, event: Event[dict[str, object]]) -> None:
        if self._take(event.data):
            self.async_write_ha_state()

    def _take(self, data: dict[str, object]) -> bool:
        """Take a command's figure; return True when the state changed."""
        raise NotImplementedError


class CommandLatency(CommandFigure):
    """Milliseconds from the end of speech to a step of the last spoken command."""

    _attr_device_class = SensorDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.MILLISECONDS
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_suggested_display_precision = 0

    def _take(self, data: dict[str, object]) -> bool:
        # A typed command has no end of speech: the figure stays.
        value = data.get(f"{self.translation_key}_ms")
        if not isinstance(value, int):
            return False
        self._attr_native_value = value
        return True


class CommandCount(CommandFigure):
    """How many commands of a kind the assistant took: all, failed, asked about..."""

    _attr_state_class = SensorStateClass.TOTAL_INCREASING
    _attr_native_value = 0

    def _take(self, data: dict[str, object]) -> bool:
        if not COUNTED[str(self.translation_key)](data):
            return False
        current = self._attr_native_value
        self._attr_native_value = (current if isinstance(current, int) else 0) + 1
        return True


# The wake counts: the step of a wake (the wake event's) each takes.
WAKE_COUNTS = {
    "wakes": DETECTED,
    "dropped_wakes": DROPPED,
    "wakes_without_command": NO_COMMAND,
}


class WakeCount(CommandFigure):
    """How many wakes the assistant heard, dropped, or got no command after."""

    _attr_state_class = SensorStateClass.TOTAL_INCREASING
    _attr_native_value = 0
    _event = EVENT_WAKE

    def _take(self, data: dict[str, object]) -> bool:
        if data.get("step") != WAKE_COUNTS[str(self.translation_key)]:
            return False
        current = self._attr_native_value
        self._attr_native_value = (current if isinstance(current, int) else 0) + 1
        return True


async_setup_entry = status_platform(
    lambda coordinator: [
        ProviderLatency(coordinator, description) for description in SENSORS
    ],
    lambda entry, subentry: [
        *(CommandLatency(subentry, key) for key in COMMAND_LATENCIES),
        *(CommandCount(subentry, key) for key in COUNTED),
        *(WakeCount(subentry, key) for key in WAKE_COUNTS),
    ],
)
