"""A small demo home: lights, switches, a lock, blinds, a thermostat, sensors.

Real Home Assistant template and generic_thermostat entities, backed by input
helpers, in the areas kitchen, living room and bedroom, exposed to Assist.
The tests set it up in-process; scripts/develop writes it into the
configuration of a real Home Assistant.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, entity_registry as er
from homeassistant.setup import async_setup_component

# Backing helpers, hidden from Assist.
HELPERS: dict[str, Any] = {
    "input_boolean": {
        f"{name}_power": {"name": f"{name} power"}
        for name in (
            "kitchen_light",
            "living_room_lamp",
            "bedroom_light",
            "coffee_machine",
            "heater",
            "front_door_lock",
        )
    },
    "input_number": {
        "living_room_blinds_position": {
            "name": "blinds position",
            "min": 0,
            "max": 100,
            "step": 1,
            "initial": 0,
        },
        "kitchen_temperature_value": {
            "name": "kitchen temperature value",
            "min": -20,
            "max": 50,
            "step": 0.5,
            "initial": 21.5,
        },
        "living_room_temperature_value": {
            "name": "living room temperature value",
            "min": -20,
            "max": 50,
            "step": 0.5,
            "initial": 19.0,
        },
    },
}


def _toggle(entity: str) -> dict[str, Any]:
    return {
        "turn_on": {
            "action": "input_boolean.turn_on",
            "target": {"entity_id": f"input_boolean.{entity}_power"},
        },
        "turn_off": {
            "action": "input_boolean.turn_off",
            "target": {"entity_id": f"input_boolean.{entity}_power"},
        },
        "state": f"{{{{ is_state('input_boolean.{entity}_power', 'on') }}}}",
    }


TEMPLATE: list[dict[str, Any]] = [
    {
        "light": [
            {
                "name": "Kitchen Light",
                "unique_id": "demo_kitchen_light",
                **_toggle("kitchen_light"),
            },
            {
                "name": "Living Room Lamp",
                "unique_id": "demo_living_room_lamp",
                **_toggle("living_room_lamp"),
            },
            {
                "name": "Bedroom Light",
                "unique_id": "demo_bedroom_light",
                **_toggle("bedroom_light"),
            },
        ],
        "switch": [
            {
                "name": "Coffee Machine",
                "unique_id": "demo_coffee_machine",
                **_toggle("coffee_machine"),
            },
            {"name": "Heater", "unique_id": "demo_heater", **_toggle("heater")},
        ],
        "lock": [
            {
                "name": "Front Door",
                "unique_id": "demo_front_door",
                "state": "{{ 'locked' if is_state('input_boolean.front_door_lock_power', 'on') else 'unlocked' }}",
                "lock": {
                    "action": "input_boolean.turn_on",
                    "target": {"entity_id": "input_boolean.front_door_lock_power"},
                },
                "unlock": {
                    "action": "input_boolean.turn_off",
                    "target": {"entity_id": "input_boolean.front_door_lock_power"},
                },
            }
        ],
        "cover": [
            {
                "name": "Living Room Blinds",
                "unique_id": "demo_living_room_blinds",
                "device_class": "blind",
                "position": "{{ states('input_number.living_room_blinds_position') | int }}",
                "open_cover": {
                    "action": "input_number.set_value",
                    "target": {"entity_id": "input_number.living_room_blinds_position"},
                    "data": {"value": 100},
                },
                "close_cover": {
                    "action": "input_number.set_value",
                    "target": {"entity_id": "input_number.living_room_blinds_position"},
                    "data": {"value": 0},
                },
                "set_cover_position": {
                    "action": "input_number.set_value",
                    "target": {"entity_id": "input_number.living_room_blinds_position"},
                    "data": {"value": "{{ position }}"},
                },
            }
        ],
        "sensor": [
            {
                "name": "Kitchen Temperature",
                "unique_id": "demo_kitchen_temperature",
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "state": "{{ states('input_number.kitchen_temperature_value') }}",
            },
            {
                "name": "Living Room Temperature",
                "unique_id": "demo_living_room_temperature",
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "state": "{{ states('input_number.living_room_temperature_value') }}",
            },
        ],
    }
]

CLIMATE: list[dict[str, Any]] = [
    {
        "platform": "generic_thermostat",
        "name": "Thermostat",
        "unique_id": "demo_thermostat",
        "heater": "switch.heater",
        "target_sensor": "sensor.kitchen_temperature",
        "target_temp": 20,
        "initial_hvac_mode": "heat",
    }
]

CONFIG: dict[str, Any] = {**HELPERS, "template": TEMPLATE, "climate": CLIMATE}

AREAS: dict[str, list[str]] = {
    "Kitchen": [
        "light.kitchen_light",
        "switch.coffee_machine",
        "sensor.kitchen_temperature",
        "climate.thermostat",
        "switch.heater",
    ],
    "Living Room": [
        "light.living_room_lamp",
        "cover.living_room_blinds",
        "sensor.living_room_temperature",
        "lock.front_door",
    ],
    "Bedroom": ["light.bedroom_light"],
}

EXPOSED = [entity for entities in AREAS.values() for entity in entities]

# What changes along with an exposed entity: the helper behind it, and what
# follows from it (the thermostat switches the heater on and off; the heater
# is the thermostat's action; the kitchen temperature is the thermostat's).
COUPLED: dict[str, frozenset[str]] = {
    **{
        f"{domain}.{name}": frozenset({f"input_boolean.{name}_power"})
        for domain, name in (
            ("light", "kitchen_light"),
            ("light", "living_room_lamp"),
            ("light", "bedroom_light"),
            ("switch", "coffee_machine"),
        )
    },
    "switch.heater": frozenset({"input_boolean.heater_power", "climate.thermostat"}),
    "lock.front_door": frozenset({"input_boolean.front_door_lock_power"}),
    "cover.living_room_blinds": frozenset({"input_number.living_room_blinds_position"}),
    "climate.thermostat": frozenset({"switch.heater", "input_boolean.heater_power"}),
    "sensor.kitchen_temperature": frozenset(
        {"input_number.kitchen_temperature_value", "climate.thermostat"}
    ),
    "sensor.living_room_temperature": frozenset(
        {"input_number.living_room_temperature_value"}
    ),
}


async def async_setup_demo_home(hass: HomeAssistant) -> None:
    """Set up the demo home in a Home Assistant under test."""
    for domain in ("input_boolean", "input_number", "template", "climate"):
        assert await async_setup_component(hass, domain, {domain: CONFIG[domain]})
    await hass.async_block_till_done()
    areas = ar.async_get(hass)
    entities = er.async_get(hass)
    for area_name, entity_ids in AREAS.items():
        area = areas.async_get_or_create(area_name)
        for entity_id in entity_ids:
            entities.async_update_entity(entity_id, area_id=area.id)
    for entity_id in hass.states.async_entity_ids():
        async_expose_entity(hass, "conversation", entity_id, entity_id in EXPOSED)
    await hass.async_block_till_done()
