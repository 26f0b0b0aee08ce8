"""How long the grammar takes: compiling, and a check, in a small and a large home.

    source scripts/env.sh; lv_run python -m scripts.grammar_time [--entities 500]

Runs the test harness's Home Assistant in-process (in a temporary
configuration folder), sets up the home of tests/test_grammar.py, and prints:
the compile time of the English sentences, the time to take in the home's
names, and a check's time (median and p95 over the commands below, first
run and cached) for that home and for the same home with many more exposed
entities.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import statistics
import tempfile
import time

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_test_home_assistant

from custom_components.local_voice.grammar import Grammar
from custom_components.local_voice.ha_adapter import async_agent_intents
from scripts.figures import percentile

# The test home: entity id, name, device class.
HOME: list[tuple[str, str, str | None]] = [
    ("light.kitchen_light", "Kitchen Light", None),
    ("light.living_room_light", "Living Room Light", None),
    ("cover.garage_door", "Garage Door", "garage"),
    ("cover.garage_door_2", "Garage Door 2", "garage"),
    ("lock.front_door", "Front Door", None),
    ("lock.front_door_deadbolt", "Front Door Deadbolt", None),
    ("scene.movie", "Movie", None),
    ("scene.movie_night", "Movie Night", None),
    ("switch.heater", "Heater", None),
]
AREAS = ("Kitchen", "Living Room")
# Commands timed, as a transcript writes them.
COMMANDS = (
    "Turn off all the lights.",
    "Turn off all the lights in the kitchen.",
    "Close the garage door.",
    "Open the garage door to 20%.",
    "Unlock the front door.",
    "Garage door",
    "Activate movie night.",
    "Set a timer for 1 hour.",
    "What time is it?",
    "Turn on the kitchen light, please.",
    "Turn off the heater in 10 minutes.",
)

_ROOMS = (
    "Kitchen", "Living Room", "Bedroom", "Office", "Hallway", "Garage", "Attic",
    "Basement", "Guest Room", "Nursery", "Study", "Porch", "Patio", "Laundry",
    "Pantry", "Den", "Loft", "Bathroom", "Dining Room", "Playroom",
)  # fmt: skip
_THINGS = (
    ("light", "Ceiling Light"), ("light", "Lamp"), ("light", "Strip"),
    ("switch", "Fan"), ("switch", "Outlet"), ("cover", "Blinds"),
    ("cover", "Curtains"), ("lock", "Door Lock"), ("media_player", "Speaker"),
    ("climate", "Thermostat"), ("fan", "Air Purifier"), ("scene", "Evening"),
    ("sensor", "Temperature"), ("binary_sensor", "Motion"),
    ("input_boolean", "Guest Mode"),
)  # fmt: skip


async def async_setup_home(hass: HomeAssistant) -> None:
    """Set up the test home: its entities and areas, exposed to Assist."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    for entity_id, name, device_class in HOME:
        async_add_entity(hass, entity_id, name, device_class)
    areas = ar.async_get(hass)
    for area in AREAS:
        areas.async_get_or_create(area)
    await hass.async_block_till_done()


def async_add_entity(
    hass: HomeAssistant, entity_id: str, name: str, device_class: str | None = None
) -> None:
    """Add an exposed entity with a name (a state only, as the tests do)."""
    attributes = {"friendly_name": name}
    if device_class is not None:
        attributes["device_class"] = device_class
    hass.states.async_set(entity_id, "off", attributes)
    async_expose_entity(hass, "conversation", entity_id, True)


def async_add_many(hass: HomeAssistant, count: int) -> None:
    """Add `count` exposed entities with varied names: "Attic Lamp 3"."""
    for index in range(count):
        room = _ROOMS[index % len(_ROOMS)]
        domain, thing = _THINGS[(index // len(_ROOMS)) % len(_THINGS)]
        copy = index // (len(_ROOMS) * len(_THINGS))
        name = f"{room} {thing}" + (f" {copy + 1}" if copy else "")
        object_id = name.lower().replace(" ", "_")
        async_add_entity(hass, f"{domain}.{object_id}", name)


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def async_check_times(grammar: Grammar, commands: tuple[str, ...]) -> str:
    """Return a check's median and p95 in ms, first run and cached."""
    rows = []
    for label in ("first", "cached"):
        times = sorted(
            [
                await _timed(
                    lambda text=text, timers=timers: grammar.async_goes_on(
                        text, "en", timers=timers
                    )
                )
                for text in commands
                for timers in (False, True)
            ]
        )
        rows.append(
            f"{label} median {statistics.median(times):.2f} ms, "
            f"p95 {percentile(times, 95):.2f} ms"
        )
    return "; ".join(rows)


async def async_figures(hass: HomeAssistant, entities: int) -> list[str]:
    """Return the figures, one line each."""
    await async_setup_home(hass)
    await async_agent_intents(hass, "en")  # the agent's own load is not ours
    grammar = Grammar(hass)

    async def first_check() -> object:
        return await grammar.async_goes_on("turn on", "en", timers=True)

    compiled = await _timed(first_check)
    lines = [
        f"compile (sentences and names, {len(HOME)} entities): {compiled:.0f} ms",
        f"check, {len(HOME)} entities: {await async_check_times(grammar, COMMANDS)}",
    ]
    async_add_many(hass, entities)
    await hass.async_block_till_done()
    total = len(HOME) + entities
    recompiled = await _timed(first_check)
    lines.extend(
        (
            f"names taken in again, {total} entities: {recompiled:.0f} ms",
            f"check, {total} entities: {await async_check_times(grammar, COMMANDS)}",
        )
    )
    return lines


async def _main(entities: int) -> None:
    with tempfile.TemporaryDirectory() as config_dir:
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            for line in await async_figures(hass, entities):
                print(line)
            await hass.async_stop(force=True)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entities", type=int, default=500)
    asyncio.run(_main(parser.parse_args().entities))


if __name__ == "__main__":
    main()
