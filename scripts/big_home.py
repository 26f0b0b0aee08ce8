"""A generated home of many exposed entities, to see how work grows with a home.

Areas hold the things a house has (lights, lamps, blinds, a thermostat...),
named after their area as people name them; every entity is exposed to
Assist. The states are set directly: nothing acts on them.
"""

from __future__ import annotations

import itertools

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, entity_registry as er

AREAS = (
    "Kitchen",
    "Living Room",
    "Bedroom",
    "Bathroom",
    "Office",
    "Hallway",
    "Garage",
    "Dining Room",
    "Guest Room",
    "Nursery",
    "Laundry",
    "Basement",
    "Attic",
    "Porch",
    "Garden",
    "Study",
    "Pantry",
    "Playroom",
    "Gym",
    "Library",
    "Cellar",
    "Loft",
    "Den",
    "Sunroom",
    "Workshop",
)
# What an area holds: (domain, name after the area's, state).
THINGS = (
    ("light", "Light", "on"),
    ("light", "Lamp", "off"),
    ("light", "Ceiling Light", "on"),
    ("light", "Floor Lamp", "off"),
    ("light", "Spotlights", "off"),
    ("light", "Strip", "on"),
    ("light", "Night Light", "off"),
    ("light", "Wall Light", "off"),
    ("switch", "Socket", "on"),
    ("switch", "Heater", "off"),
    ("switch", "Radio", "off"),
    ("switch", "Charger", "on"),
    ("cover", "Blinds", "open"),
    ("cover", "Curtains", "closed"),
    ("fan", "Fan", "off"),
    ("lock", "Door", "locked"),
    ("climate", "Thermostat", "heat"),
    ("sensor", "Temperature", "21"),
    ("sensor", "Humidity", "40"),
    ("media_player", "Speaker", "idle"),
)


async def async_setup_big_home(hass: HomeAssistant, count: int = 500) -> None:
    """Add `count` exposed entities, area by area, each in its area."""
    areas = ar.async_get(hass)
    entities = er.async_get(hass)
    for area_name, (domain, thing, state) in itertools.islice(
        itertools.product(AREAS, THINGS), count
    ):
        area = areas.async_get_or_create(area_name)
        name = f"{area_name} {thing}"
        entry = entities.async_get_or_create(
            domain,
            "big_home",
            name.lower().replace(" ", "_"),
            suggested_object_id=name.lower().replace(" ", "_"),
        )
        entities.async_update_entity(entry.entity_id, area_id=area.id)
        hass.states.async_set(entry.entity_id, state, {"friendly_name": name})
        async_expose_entity(hass, "conversation", entry.entity_id, True)
    await hass.async_block_till_done()
