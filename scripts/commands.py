"""The demo home's spoken commands: what to say, what comes before, what must follow.

Plain data, so that the test suite (an in-process Home Assistant) and the
benchmark (a real `hass` process over its APIs) judge commands the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import re
from typing import Any


@dataclass(frozen=True, slots=True)
class Call:
    """A service call on one entity."""

    domain: str
    service: str
    entity_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Expect:
    """What must hold after the command.

    An entity's state (`attribute` None) or attribute equals `value`; or,
    with no entity, the answer holds each of `words`.
    """

    entity_id: str | None = None
    value: Any = None
    attribute: str | None = None
    words: tuple[str, ...] = ()

    def met(self, state: str | None, attributes: dict[str, Any], answer: str) -> bool:
        """Return True when the state (or attributes) and the answer meet it."""
        if self.entity_id is None:
            return all(word in answer for word in self.words)
        if self.attribute is not None:
            return bool(attributes.get(self.attribute) == self.value)
        return state == self.value


@dataclass(frozen=True, slots=True)
class SpokenCommand:
    """A command, the call that sets the scene, and what must follow."""

    text: str
    before: Call
    expect: Expect
    # Where a speaker may pause inside the sentence: the words before it
    # are no command of their own.
    pause_after: str | None = None


def _state(entity_id: str, value: str) -> Expect:
    return Expect(entity_id, value)


COMMANDS = [
    SpokenCommand(
        "Turn on the kitchen light.",
        Call("light", "turn_off", "light.kitchen_light"),
        _state("light.kitchen_light", "on"),
        pause_after="Turn on",
    ),
    SpokenCommand(
        "Turn off the kitchen light.",
        Call("light", "turn_on", "light.kitchen_light"),
        _state("light.kitchen_light", "off"),
        pause_after="Turn off",
    ),
    SpokenCommand(
        "Turn on the living room lamp.",
        Call("light", "turn_off", "light.living_room_lamp"),
        _state("light.living_room_lamp", "on"),
        pause_after="Turn on",
    ),
    SpokenCommand(
        "Turn off the bedroom light.",
        Call("light", "turn_on", "light.bedroom_light"),
        _state("light.bedroom_light", "off"),
        pause_after="Turn off",
    ),
    SpokenCommand(
        "Turn on the coffee machine.",
        Call("switch", "turn_off", "switch.coffee_machine"),
        _state("switch.coffee_machine", "on"),
        pause_after="Turn on",
    ),
    SpokenCommand(
        "Turn off the coffee machine.",
        Call("switch", "turn_on", "switch.coffee_machine"),
        _state("switch.coffee_machine", "off"),
        pause_after="Turn off",
    ),
    SpokenCommand(
        "Turn on the heater.",
        Call("switch", "turn_off", "switch.heater"),
        _state("switch.heater", "on"),
        pause_after="Turn on",
    ),
    SpokenCommand(
        "Lock the front door.",
        Call("lock", "unlock", "lock.front_door"),
        _state("lock.front_door", "locked"),
    ),
    SpokenCommand(
        "Unlock the front door.",
        Call("lock", "lock", "lock.front_door"),
        _state("lock.front_door", "unlocked"),
    ),
    SpokenCommand(
        "Open the living room blinds.",
        Call("cover", "close_cover", "cover.living_room_blinds"),
        _state("cover.living_room_blinds", "open"),
    ),
    SpokenCommand(
        "Close the living room blinds.",
        Call("cover", "open_cover", "cover.living_room_blinds"),
        _state("cover.living_room_blinds", "closed"),
    ),
    SpokenCommand(
        "Set the living room blinds to 50 percent.",
        Call("cover", "close_cover", "cover.living_room_blinds"),
        Expect("cover.living_room_blinds", 50, attribute="current_position"),
        pause_after="Set the living room blinds",
    ),
    SpokenCommand(
        "Turn off the lights in the living room.",
        Call("light", "turn_on", "light.living_room_lamp"),
        _state("light.living_room_lamp", "off"),
        pause_after="Turn off the lights",
    ),
    SpokenCommand(
        "Turn on the lights in the bedroom.",
        Call("light", "turn_off", "light.bedroom_light"),
        _state("light.bedroom_light", "on"),
        pause_after="Turn on the lights",
    ),
    SpokenCommand(
        "Set the thermostat to 22 degrees.",
        Call("climate", "set_temperature", "climate.thermostat", {"temperature": 18}),
        Expect("climate.thermostat", 22, attribute="temperature"),
    ),
    SpokenCommand(
        "What is the temperature in the kitchen?",
        Call(
            "input_number",
            "set_value",
            "input_number.kitchen_temperature_value",
            {"value": 21.5},
        ),
        Expect(words=("21", "5")),
    ),
    SpokenCommand(
        "Is the front door locked?",
        Call("lock", "lock", "lock.front_door"),
        Expect(words=("yes",)),
    ),
]


def normalize(text: str) -> str:
    """Lower-case words without punctuation, for comparing transcripts."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))
