"""A home of locks, doors, lights and scenes whose services only record calls.

The entities are registered and exposed to Assist like real ones, with
areas; the services they would call are recording stand-ins, so every action
a command leads to is seen and none is carried out.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import area_registry as ar, entity_registry as er
from pytest_homeassistant_custom_component.common import async_mock_service

_FEATURES = {"supported_features": 15}

# entity id: (state, name, area, other attributes)
HOME: dict[str, tuple[str, str, str | None, dict[str, Any]]] = {
    "lock.front_door": ("locked", "Front Door", None, {}),
    "lock.front_door_deadbolt": ("locked", "Front Door Deadbolt", None, {}),
    "lock.back_door": ("locked", "Back Door", None, {}),
    "cover.garage_door": (
        "closed",
        "Garage Door",
        None,
        {"device_class": "garage", **_FEATURES},
    ),
    "cover.garage_door_2": (
        "closed",
        "Garage Door 2",
        None,
        {"device_class": "garage", **_FEATURES},
    ),
    "cover.living_room_blinds": (
        "closed",
        "Living Room Blinds",
        "Living Room",
        {"device_class": "blind", **_FEATURES},
    ),
    "valve.garden_water": ("closed", "Garden Water", None, {"supported_features": 3}),
    "light.kitchen_light": ("on", "Kitchen Light", "Kitchen", {}),
    "light.hall_light": ("on", "Hall Light", "Hall", {}),
    "switch.heater": ("on", "Heater", "Living Room", {}),
    "script.unlock_all": ("off", "Unlock All", None, {}),
    "scene.movie": ("unknown", "Movie", None, {}),
    "scene.movie_night": ("unknown", "Movie Night", None, {}),
}
SERVICES = {
    "lock": ("lock", "unlock", "open"),
    "cover": ("open_cover", "close_cover", "set_cover_position", "toggle"),
    "valve": ("open_valve", "close_valve"),
    "light": ("turn_on", "turn_off", "toggle"),
    "switch": ("turn_on", "turn_off", "toggle"),
    "script": ("turn_on", "turn_off"),
    "scene": ("turn_on",),
}


class Calls:
    """The service calls the home's stand-in services got."""

    def __init__(self) -> None:
        """Nothing called yet."""
        self.lists: list[list[ServiceCall]] = []

    def made(self) -> list[tuple[str, str, list[str]]]:
        """Return each call as (domain, service, entity ids)."""
        return [
            (call.domain, call.service, _ids(call.data.get("entity_id")))
            for calls in self.lists
            for call in calls
        ]


def _ids(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, list) else []


async def async_stand_in_home(hass: HomeAssistant) -> Calls:
    """Set the home up; return what records its service calls."""
    entities = er.async_get(hass)
    areas = ar.async_get(hass)
    for entity_id, (state, name, area, attributes) in HOME.items():
        domain, object_id = entity_id.split(".")
        # Assist reads the names from the registry.
        entry = entities.async_get_or_create(
            domain,
            "stand_in",
            object_id,
            suggested_object_id=object_id,
            original_name=name,
        )
        assert entry.entity_id == entity_id
        if area is not None:
            area_id = (
                areas.async_get_area_by_name(area) or areas.async_create(area)
            ).id
            entities.async_update_entity(entity_id, area_id=area_id)
        hass.states.async_set(entity_id, state, {"friendly_name": name, **attributes})
        async_expose_entity(hass, conversation.DOMAIN, entity_id, True)
    calls = Calls()
    for domain, services in SERVICES.items():
        for service in services:
            calls.lists.append(async_mock_service(hass, domain, service))
    await hass.async_block_till_done()
    return calls
