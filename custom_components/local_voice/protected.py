"""Which commands are risky enough to be asked about first.

A wrong unlock is worse than a slow one. By default a command is protected
when it would unlock a lock, open a garage door, gate or door cover, open a
valve, or run a script or scene whose name says it unlocks, opens a door or
disarms: the actions that let someone in. Their safe direction (lock, close)
never asks. The user may protect any other entity (then every command that
changes it asks, but its safe direction) or unprotect one.

The targets are matched as Home Assistant's intent handlers would match
them, but without the speaker's area as a preference: that can only add
targets, so a command is judged on everything it could reach.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import re

from hassil.recognize import RecognizeResult
from homeassistant.components import conversation
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import intent

# Slots of the default agent's sentences that hold a name.
NAME_SLOTS = ("name", "area", "floor")

# Intents that change nothing: never asked about.
READ_ONLY_INTENTS = frozenset(
    {
        "HassGetState",
        "HassClimateGetTemperature",
        "HassGetCurrentDate",
        "HassGetCurrentTime",
        "HassGetWeather",
        "HassTimerStatus",
        "HassNevermind",
        "HassRespond",
    }
)
# Intents that open what they act on, close it, or may do either.
OPENING = frozenset({"HassTurnOn", "HassToggle"})
CLOSING = frozenset({"HassTurnOff", "HassToggle"})
# For locks "on" is lock and "off" is unlock.
UNLOCKING = CLOSING
POSITIONING = "HassSetPosition"

RISKY_COVER_CLASSES = frozenset({"garage", "gate", "door"})
# Domains of what guards the home (with garage doors, gates and doors among
# the covers): a repair that acts on one is always asked about, whichever way
# ("unlock" is heard as "I lock" as often as not).
_GUARD_DOMAINS = frozenset({"lock", "valve", "alarm_control_panel"})
_RISKY_COVER_WORDS = frozenset({"garage", "gate", "door", "doors"})
# A script or scene whose name says one of these lets someone in.
_RISKY_NAME = re.compile(
    r"\b(unlock\w*|disarm\w*|open\w*\s+(?:\w+\s+)?(?:garage|gate|door)s?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Protection:
    """What the user chose on top of the defaults (entity ids)."""

    protected: frozenset[str] = frozenset()
    unprotected: frozenset[str] = frozenset()


def constraints_of(result: RecognizeResult) -> intent.MatchTargetsConstraints:
    """Return the target constraints a match sets, as the intent handlers read them."""
    domains: set[str] = set()
    required = result.intent_data.requires_context.get("domain")
    if "domain" in result.entities:
        domains.add(str(result.entities["domain"].value))
    elif isinstance(required, list):
        domains.update(str(d) for d in required)
    elif isinstance(required, str):
        domains.add(required)
    device_class = result.entities.get("device_class")

    def value(slot: str) -> str | None:
        entity = result.entities.get(slot)
        return str(entity.value) if entity is not None else None

    return intent.MatchTargetsConstraints(
        name=value("name"),
        area_name=value("area"),
        floor_name=value("floor"),
        domains=domains or None,
        device_classes=[str(device_class.value)] if device_class else None,
        assistant=conversation.DOMAIN,
    )


def targets(hass: HomeAssistant, result: RecognizeResult) -> list[State]:
    """Return every exposed entity a match could act on."""
    if result.intent.name in READ_ONLY_INTENTS:
        return []
    constraints = replace(constraints_of(result), allow_duplicate_names=True)
    return intent.async_match_targets(hass, constraints).states


def _position(result: RecognizeResult) -> float | None:
    if (slot := result.entities.get("position")) is None:
        return None
    try:
        return float(slot.value)
    except TypeError, ValueError:
        return None


def _risky_cover(state: State) -> bool:
    device_class = state.attributes.get("device_class")
    if device_class is not None:
        return device_class in RISKY_COVER_CLASSES
    return bool(_RISKY_COVER_WORDS & set(str(state.name).lower().split()))


def guards_the_home(state: State) -> bool:
    """Return whether an entity is a lock, alarm, valve, garage door, gate or door."""
    return state.domain in _GUARD_DOMAINS or (
        state.domain == "cover" and _risky_cover(state)
    )


def risky_name(name: str) -> bool:
    """Return whether a script's or scene's name says it unlocks, opens or disarms."""
    return _RISKY_NAME.search(name) is not None


def lets_in(intent_name: str, state: State, position: float | None) -> bool:
    """Return whether acting on this entity unlocks, opens a door, valve or gate."""
    domain = state.domain
    if domain == "lock":
        return intent_name in UNLOCKING
    if domain in ("cover", "valve"):
        if domain == "cover" and not _risky_cover(state):
            return False
        if intent_name == POSITIONING:
            return position is None or position > 0
        return intent_name in OPENING
    if domain in ("script", "scene", "button", "input_button"):
        return intent_name in OPENING and risky_name(str(state.name))
    return False


def safe_direction(intent_name: str, state: State, position: float | None) -> bool:
    """Return whether the command locks or closes the entity: never asked about."""
    if state.domain == "lock":
        return intent_name == "HassTurnOn"
    if state.domain in ("cover", "valve"):
        return intent_name == "HassTurnOff" or (
            intent_name == POSITIONING and position == 0
        )
    return False


def asks_for(
    hass: HomeAssistant, result: RecognizeResult, protection: Protection
) -> list[State]:
    """Return the entities that make this command a question (none: act)."""
    name = result.intent.name
    if name in READ_ONLY_INTENTS:
        return []
    position = _position(result)
    return [
        state
        for state in targets(hass, result)
        if state.entity_id not in protection.unprotected
        and (
            lets_in(name, state, position)
            or (
                state.entity_id in protection.protected
                and not safe_direction(name, state, position)
            )
        )
    ]
