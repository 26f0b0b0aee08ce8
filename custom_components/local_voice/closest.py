"""The closest commands this home can do to a sentence nobody understood.

A general recogniser mishears verbs as readily as names: "Walk the front
door" was "Lock the front door", "Chat the living room lines to 50%" was
"Set the living room blinds to 50%". Repairing one name (names.py) cannot
mend a verb, so here the whole sentence is compared with every command the
home can do: Home Assistant's own sentence templates, expanded a few ways
each, filled with the names of the exposed entities, areas and floors they
may act on, and with the numbers that were heard. Each is scored by how alike
it looks (spelling) and sounds (Metaphone codes) to what was heard.

The proposals are only proposals: the caller decides what to do with them,
and `flips` tells it when one would reverse a direction the speaker said.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
import heapq
import itertools
import re

from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    Permutation,
    RuleReference,
    Sentence,
    TextChunk,
)
from hassil.intents import IntentData, Intents, RangeSlotList, SlotList, TextSlotList
from homeassistant.components import conversation
from homeassistant.components.homeassistant import async_should_expose
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    floor_registry as fr,
)
import numpy as np
from rapidfuzz import fuzz, process

from .ha_adapter import async_agent_intents
from .language import base_language
from .names import LANGUAGES, sound, words

# Ways one template is written out at most. Every way is filled with every
# name it may take, so this bounds the space: a few verbs, with and without
# the optional words.
MAX_EXPANSIONS = 8
# Items of one alternative tried: "(turn|switch|change|bring)" gives the
# common verbs first.
MAX_ALTERNATIVES = 4
# Slots filled with a name of the home: names by entity, areas, floors.
NAME_SLOTS = frozenset({"name", "area", "floor"})
# Stands for a number in a template until the heard numbers are known.
NUMBER = "\x00"

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Proposal:
    """A command this home can do, and how alike it is to what was heard."""

    # A sentence the default agent should understand, e.g. "lock the Front Door".
    text: str
    # 0..1: how alike the heard sentence and this one look and sound.
    score: float


@dataclass(frozen=True, slots=True)
class _Slot:
    """A slot of a template: a name slot, or a number with its range."""

    name: str
    start: float = 0
    stop: float = 0


type _Part = str | _Slot
type _Way = tuple[_Part, ...]


class _UnusableError(Exception):
    """The template takes free text (a wildcard) or a list that is missing."""


@dataclass(frozen=True, slots=True)
class _Thing:
    """An exposed entity: its domain, its names, the areas and floor it is in."""

    domain: str
    names: tuple[str, ...]
    areas: tuple[str, ...]
    floors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Place:
    """An area or a floor: its names and the domains of the exposed things in it."""

    names: tuple[str, ...]
    domains: frozenset[str]
    floors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Home:
    """What the command space is built from; equal homes share a space."""

    things: tuple[_Thing, ...]
    areas: tuple[_Place, ...]
    floors: tuple[_Place, ...]


@dataclass(frozen=True, slots=True)
class _Template:
    """One way a sentence is written, and what its name slots may hold."""

    way: _Way
    domains: frozenset[str]


@dataclass(slots=True)
class _Strings:
    """Commands as shown, and as compared: spelled, spoken, kinds of sounds."""

    texts: list[str]
    spelled: list[str]
    spoken: list[str]
    kinds: list[str]

    def add(self, text: str, spelled: str, spoken: str, kinds: str) -> None:
        """Add a command."""
        self.texts.append(text)
        self.spelled.append(spelled)
        self.spoken.append(spoken)
        self.kinds.append(kinds)


@dataclass(slots=True)
class _Space:
    """The commands of a home, ready to compare.

    Commands with numbers are kept as formats, by the ranges of their
    numbers, until the heard numbers are put in them.
    """

    plain: _Strings
    numbered: dict[tuple[tuple[float, float], ...], _Strings]

    @property
    def size(self) -> int:
        """Return how many commands there are, those with numbers as one each."""
        return len(self.plain.texts) + sum(len(s.texts) for s in self.numbered.values())


# Metaphone letters by the kind of sound they stand for: vowels, glides and "h",
# nasals, liquids, lip stops, tongue stops, throat stops, hisses, "f"s.
# Kin sounds are what a recogniser confuses ("I'm off" for "unlock"), and
# Metaphone keeps only a word's first vowel, so a sound is compared as its
# letters and as its kinds.
_KINDS = str.maketrans("AEIOUWYHMNLRBPTD0KGQSXJCFV", "AAAAAAAANNRRPPTTTKKKSSSSFF")


def _code(word: str) -> str:
    """Return a word's Metaphone code; a number stands for itself."""
    return sound([word]) or word


def _kinds(code: str) -> str:
    """Return the kinds of the sounds of a Metaphone code (a number as is)."""
    return code.translate(_KINDS)


def _ordered_product(choices: Sequence[Sequence[_Way]], limit: int) -> list[_Way]:
    """Return up to `limit` concatenations, the first choices' combination first.

    Combinations are taken by how far they stray from each part's first
    choice, so a few ways vary one part at a time instead of all varying the
    last part only; earlier parts (the verb) vary first.
    """
    if any(not options for options in choices):
        return []
    start = (0,) * len(choices)
    heap: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = [(0, start, start)]
    seen = {start}
    found: list[_Way] = []
    while heap and len(found) < limit:
        _, _, index = heapq.heappop(heap)
        found.append(tuple(p for k, i in enumerate(index) for p in choices[k][i]))
        for k in range(len(choices)):
            if index[k] + 1 < len(choices[k]):
                nxt = (*index[:k], index[k] + 1, *index[k + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (sum(nxt), tuple(-i for i in nxt), nxt))
    return found


class _Expander:
    """Write hassil templates out a bounded number of ways."""

    def __init__(
        self, rules: Mapping[str, Sentence], lists: Mapping[str, SlotList]
    ) -> None:
        self.rules = rules
        self.lists = lists

    def expand(self, expression: Expression) -> list[_Way]:
        """Return up to MAX_EXPANSIONS ways, without repeats."""
        if isinstance(expression, TextChunk):
            return [(expression.original_text,)]
        if isinstance(expression, RuleReference):
            if (rule := self.rules.get(expression.rule_name)) is None:
                raise _UnusableError(expression.rule_name)
            return self.expand(rule.expression)
        if isinstance(expression, ListReference):
            return self._list(expression)
        if isinstance(expression, Alternative):
            # An optional's empty choice (its last item) comes first: the
            # plainest way is the template without its optional words, and
            # they come back one at a time.
            items = [i for i in expression.items if not _empty(i)]
            ways: list[_Way] = [()] if len(items) < len(expression.items) else []
            for item in items[:MAX_ALTERNATIVES]:
                ways.extend(self.expand(item))
            return _distinct(ways)[:MAX_EXPANSIONS]
        if isinstance(expression, Permutation):
            # The order written first, and the reverse.
            orders = [expression.items, expression.items[::-1]]
            ways = []
            for order in orders[: 1 if len(expression.items) < 2 else 2]:
                ways.extend(
                    _ordered_product(
                        [self.expand(i) for i in _spaced(order)],
                        MAX_EXPANSIONS,
                    )
                )
            return _distinct(ways)[:MAX_EXPANSIONS]
        if isinstance(expression, Group):
            return _distinct(
                _ordered_product(
                    [self.expand(item) for item in expression.items], MAX_EXPANSIONS
                )
            )
        raise _UnusableError(type(expression).__name__)

    def _list(self, reference: ListReference) -> list[_Way]:
        name = reference.list_name
        if name in NAME_SLOTS:
            return [(_Slot(name),)]
        if reference.is_inline_range:
            span = reference.get_inline_range()
            assert span is not None
            return [(_Slot(name, span[0], span[1]),)]
        slot_list = self.lists.get(name)
        if isinstance(slot_list, RangeSlotList):
            return [(_Slot(name, slot_list.start, slot_list.stop),)]
        if isinstance(slot_list, TextSlotList):
            ways: list[_Way] = []
            for value in slot_list.values[:MAX_ALTERNATIVES]:
                ways.extend(self.expand(value.text_in))
            return _distinct(ways)[:MAX_EXPANSIONS]
        # A wildcard takes any words: no sentence to propose.
        raise _UnusableError(name)


def _empty(expression: Expression) -> bool:
    return isinstance(expression, TextChunk) and not expression.text.strip()


def _spaced(items: Sequence[Expression]) -> list[Expression]:
    """Return permutation items with a space between them (hassil joins so)."""
    spaced: list[Expression] = []
    for item in items:
        if spaced:
            spaced.append(TextChunk(" "))
        spaced.append(item)
    return spaced


def _distinct(ways: list[_Way]) -> list[_Way]:
    return list(dict.fromkeys(ways))


def _domains(data: IntentData) -> frozenset[str]:
    """Return the domains a template's names must belong to (empty: any)."""
    found: set[str] = set()
    for value in (data.requires_context.get("domain"), data.slots.get("domain")):
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found.update(str(v) for v in value)
    return frozenset(found)


def templates(intents: Intents) -> list[_Template]:
    """Return the ways the intents' sentences are written, without repeats.

    Sentences that need the satellite's own area (no name to put there) or
    take free text are left out: neither makes a command to propose.
    """
    found: dict[_Template, None] = {}
    for known in intents.intents.values():
        for data in known.data:
            if set(data.requires_context) - {"domain"} or data.excludes_context:
                continue
            expander = _Expander(
                {**intents.expansion_rules, **data.expansion_rules},
                {**intents.slot_lists, **data.slot_lists},
            )
            domains = _domains(data)
            for sentence in data.sentences:
                try:
                    ways = expander.expand(sentence.expression)
                except _UnusableError:
                    continue
                for way in ways:
                    found.setdefault(_Template(way, domains))
    return list(found)


def _fillings(template: _Template, home: _Home) -> Iterator[dict[str, str]]:
    """Return the names a template's name slots may hold in this home.

    A name goes with the area and floor its entity is in, so no proposal
    asks for a thing where it is not; areas and floors hold things of the
    template's domains.
    """
    slots = {p.name for p in template.way if isinstance(p, _Slot)} & NAME_SLOTS
    domains = template.domains

    def holds(place: _Place) -> bool:
        return not domains or bool(domains & place.domains)

    if "name" in slots:
        for thing in home.things:
            if domains and thing.domain not in domains:
                continue
            areas = thing.areas if "area" in slots else ("",)
            floors = thing.floors if "floor" in slots else ("",)
            for name, area, floor in itertools.product(thing.names, areas, floors):
                yield {"name": name, "area": area, "floor": floor}
    elif "area" in slots:
        for place in home.areas:
            if not holds(place):
                continue
            floors = place.floors if "floor" in slots else ("",)
            for area, floor in itertools.product(place.names, floors):
                yield {"area": area, "floor": floor}
    elif "floor" in slots:
        for place in home.floors:
            if holds(place):
                for floor in place.names:
                    yield {"floor": floor}
    else:
        yield {}


def _strings() -> _Strings:
    return _Strings([], [], [], [])


def build(ways: Sequence[_Template], home: _Home, english: bool) -> _Space:
    """Return the home's command space: every template with every filling.

    A text that says a word twice running ("is the the Kitchen Light on",
    from a rule's "the" before an optional one) is left out: the template
    also gives it without the repeat.
    """
    space = _Space(_strings(), {})
    seen: set[str] = set()
    code = _code if english else str
    for template in ways:
        for filling in _fillings(template, home):
            pieces: list[str] = []
            tokens: list[str] = []
            ranges: list[tuple[float, float]] = []
            for part in template.way:
                if isinstance(part, str):
                    pieces.append(part)
                    tokens.extend(words(part))
                elif part.name in NAME_SLOTS:
                    pieces.append(filling[part.name])
                    tokens.extend(words(filling[part.name]))
                else:
                    pieces.append(NUMBER)
                    tokens.append(NUMBER)
                    ranges.append((part.start, part.stop))
            text = _SPACES.sub(" ", "".join(pieces)).strip()
            if (
                text in seen
                or not tokens
                or any(a == b for a, b in itertools.pairwise(tokens))
            ):
                continue
            seen.add(text)
            codes = [t if t == NUMBER else code(t) for t in tokens]
            strings = (
                space.numbered.setdefault(tuple(ranges), _strings())
                if ranges
                else space.plain
            )
            strings.add(
                text,
                " ".join(tokens),
                "".join(codes),
                _kinds("".join(codes)) if english else "",
            )
    return space


def _fill(formats: list[str], numbers: Sequence[str]) -> list[str]:
    """Return the formats with the numbers in place of their markers, in order."""
    if len(numbers) == 1:
        return [f.replace(NUMBER, numbers[0]) for f in formats]
    filled = []
    for fmt in formats:
        pieces = fmt.split(NUMBER)
        out = [pieces[0]]
        for number, piece in zip(numbers, pieces[1:], strict=True):
            out.extend((number, piece))
        filled.append("".join(out))
    return filled


def _numbers(text: str) -> list[tuple[str, float]]:
    """Return the numbers written in a text, as written and as values."""
    return [(m.group(), float(m.group())) for m in _NUMBER.finditer(text)]


def _scores(heard: _Strings, strings: _Strings, english: bool) -> np.ndarray:
    """Return how alike each command is to the heard text (0..100).

    The mean of the edit similarities of spellings, Metaphone codes and the
    kinds of the codes' sounds; spelling only where sounds are not English.
    """
    pairs = [(heard.spelled, strings.spelled)]
    if english:
        pairs += [(heard.spoken, strings.spoken), (heard.kinds, strings.kinds)]
    total = np.zeros(len(strings.texts), dtype=np.float32)
    for one, many in pairs:
        total += process.cdist(
            one, many, scorer=fuzz.ratio, dtype=np.float32, workers=-1
        )[0]
    return total / len(pairs)


def closest(space: _Space, heard: str, english: bool, limit: int) -> list[Proposal]:
    """Return the `limit` commands of the space most alike to the heard text."""
    heard_words = words(heard)
    if not heard_words or limit < 1:
        return []
    codes = [_code(w) for w in heard_words] if english else []
    query = _Strings(
        [heard],
        [" ".join(heard_words)],
        ["".join(codes)],
        [_kinds("".join(codes))],
    )
    numbers = _numbers(heard)
    groups = [space.plain]
    # A command takes the heard numbers in order, if they are in its ranges.
    for ranges, formats in space.numbered.items():
        if len(ranges) > len(numbers) or not all(
            low <= value <= high
            for (low, high), (_, value) in zip(ranges, numbers, strict=False)
        ):
            continue
        digits = [n for n, _ in numbers[: len(ranges)]]
        groups.append(
            _Strings(
                _fill(formats.texts, digits),
                _fill(formats.spelled, digits),
                _fill(formats.spoken, digits),
                _fill(formats.kinds, digits),
            )
        )
    texts = [t for group in groups for t in group.texts]
    if not texts:
        return []
    scores = np.concatenate([_scores(query, group, english) for group in groups])
    # More than asked for: filled numbers can repeat a text.
    wanted = min(len(texts), limit * 2)
    best = np.argpartition(-scores, wanted - 1)[:wanted].tolist()
    proposals: dict[str, Proposal] = {}
    for i in sorted(best, key=lambda i: (-scores[i], texts[i])):
        proposals.setdefault(
            texts[i], Proposal(texts[i], round(float(scores[i]) / 100, 3))
        )
    return list(proposals.values())[:limit]


@callback
def home_of(hass: HomeAssistant) -> _Home:
    """Return the exposed entities, areas and floors, by name."""
    entities = er.async_get(hass)
    devices = dr.async_get(hass)
    areas = ar.async_get(hass)
    floors = fr.async_get(hass)

    def named(name: str, aliases: Iterable[object]) -> tuple[str, ...]:
        found = [name, *(a for a in aliases if isinstance(a, str))]
        return tuple(dict.fromkeys(n.strip() for n in found if n.strip()))

    def floor_names(floor_id: str | None) -> tuple[str, ...]:
        if floor_id is None or (floor := floors.async_get_floor(floor_id)) is None:
            return ()
        return named(floor.name, floor.aliases)

    area_domains: dict[str, set[str]] = {}
    things: list[_Thing] = []
    for state in hass.states.async_all():
        if not async_should_expose(hass, conversation.DOMAIN, state.entity_id):
            continue
        aliases: Iterable[object] = ()
        area_id: str | None = None
        if (entry := entities.async_get(state.entity_id)) is not None:
            aliases = entry.aliases
            area_id = entry.area_id
            if area_id is None and entry.device_id is not None:
                device = devices.async_get(entry.device_id)
                area_id = device.area_id if device is not None else None
        area = areas.async_get_area(area_id) if area_id is not None else None
        if area is not None:
            area_domains.setdefault(area.id, set()).add(state.domain)
        things.append(
            _Thing(
                state.domain,
                named(state.name, aliases),
                named(area.name, area.aliases) if area is not None else (),
                floor_names(area.floor_id) if area is not None else (),
            )
        )
    floor_domains: dict[str, set[str]] = {}
    places: list[_Place] = []
    for area in areas.async_list_areas():
        domains = area_domains.get(area.id, set())
        if area.floor_id is not None:
            floor_domains.setdefault(area.floor_id, set()).update(domains)
        places.append(
            _Place(
                named(area.name, area.aliases),
                frozenset(domains),
                floor_names(area.floor_id),
            )
        )
    return _Home(
        tuple(sorted(things, key=lambda t: (t.domain, t.names))),
        tuple(places),
        tuple(
            _Place(
                named(floor.name, floor.aliases),
                frozenset(floor_domains.get(floor.floor_id, set())),
            )
            for floor in floors.async_list_floors()
        ),
    )


class CommandSpace:
    """The commands of a home, to find the closest ones to a misheard sentence.

    Built once per language and home (exposed entities, their names, areas
    and floors) in the executor, and rebuilt when the home changes.
    """

    def __init__(self, hass: HomeAssistant) -> None:
        """Use the default agent and the exposed entities of `hass`."""
        self.hass = hass
        self._templates: dict[str, list[_Template]] = {}
        self._spaces: dict[str, tuple[_Home, _Space]] = {}
        self._size = 0

    @property
    def size(self) -> int:
        """Return the command count of the language built last (for figures)."""
        return self._size

    async def _async_space(self, language: str) -> _Space | None:
        home = home_of(self.hass)
        built = self._spaces.get(language)
        if built is not None and built[0] == home:
            return built[1]
        if (ways := self._templates.get(language)) is None:
            intents = await async_agent_intents(self.hass, language)
            if intents is None:
                return None
            ways = await self.hass.async_add_executor_job(templates, intents)
            self._templates[language] = ways
        space = await self.hass.async_add_executor_job(
            build, ways, home, _english(language)
        )
        self._spaces[language] = (home, space)
        self._size = space.size
        return space

    async def async_closest(
        self, heard: str, language: str, limit: int = 5
    ) -> list[Proposal]:
        """The closest commands of this home, best first, distinct texts."""
        space = await self._async_space(language)
        if space is None:
            return []
        # CPU work over thousands of strings: in the executor, not on the loop.
        return await self.hass.async_add_executor_job(
            closest, space, heard, _english(language), limit
        )


def _english(language: str) -> bool:
    """Return whether sounds can be compared: Metaphone codes are English."""
    return base_language(language) in LANGUAGES


# The directions an action can take, by the words that say them.
_DIRECTIONS: dict[str, str] = {
    **dict.fromkeys(("lock", "locks", "locked", "locking"), "lock"),
    **dict.fromkeys(("unlock", "unlocks", "unlocked", "unlocking"), "unlock"),
    **dict.fromkeys(("open", "opens", "opened", "opening"), "open"),
    **dict.fromkeys(
        ("close", "closes", "closed", "closing", "shut", "shuts", "shutting"),
        "close",
    ),
    "on": "on",
    # "Lights out" is the lights off.
    **dict.fromkeys(("off", "out"), "off"),
    **dict.fromkeys(("arm", "arms", "armed", "arming"), "arm"),
    **dict.fromkeys(("disarm", "disarms", "disarmed", "disarming"), "disarm"),
}
_OPPOSITES = (("lock", "unlock"), ("open", "close"), ("on", "off"), ("arm", "disarm"))


def polarity(text: str) -> Counter[str]:
    """The action directions a text says, words inside names included: lock/unlock, open/close, on/off, arm/disarm (also "turn on"/"switch off", "unlocked", "disarm"...)."""
    return Counter(_DIRECTIONS[word] for word in words(text) if word in _DIRECTIONS)


def flips(heard: str, proposed: str) -> bool:
    """True when the proposal says a direction the heard text did not, or drops one it said, in a way that reverses it (e.g. heard 'lock', proposed 'unlock'; 'run lock all' -> 'run Unlock All'; 'open' -> 'close').

    On each pair of opposites, the proposal may not say one more often than
    was heard when its opposite was heard ("lock" for "unlock"), nor say
    one less often when it keeps the opposite: of "turn off the On Air
    light", "turn on Air light" dropped "off" and left "on" acting. A
    direction added where neither was heard ("lock" for "walk") is no
    reversal: the caller asks before acting on it.
    """
    said, proposes = polarity(heard), polarity(proposed)
    for one, other in _OPPOSITES:
        for this, that in ((one, other), (other, one)):
            if proposes[this] > said[this] and said[that]:
                return True
            if proposes[this] < said[this] and proposes[that]:
                return True
    return False
