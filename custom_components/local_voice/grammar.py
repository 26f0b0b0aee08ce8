"""Whether a longer command this home understands starts with what was heard.

The speech-to-text may answer early, at a short pause, when what it heard so
far is already a whole command. That is unsafe when a longer sentence starts
with the same words and means something else: "turn off all the lights"
then "in the kitchen", "close the garage door" then "in 10 minutes",
"garage door" then "2". This module answers that question from the
sentences of Home Assistant's own agent (hassil templates) and the home's
names, areas and floors.

The templates are compiled once per language into a nondeterministic
automaton over words (lower case, punctuation dropped, as `names.words`
splits a transcript). Parts of a word written apart in a template
("hour[s]") are joined first: a fragment automaton with explicit word breaks
is read out into words. Lists of the home ("{name}", "{area}", "{floor}")
are not copied into the automaton: an arc names the list, and a trie of its
names' words is entered from it, so a home with many names costs no more to
compile. Numbers and wildcards are loops over any number word or any word.

A check runs the heard words through the automaton, with the sets of states
reached cached as a lazily built deterministic automaton, and then asks
whether any state reached can still take a word and end a sentence. Words
that are only the language's skip words ("please") do not count: the agent
drops them anyway. Being unsure always answers "may go on", which only
means waiting for Home Assistant's own end of speech.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
import logging
import re

from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    Permutation,
    RuleReference,
    TextChunk,
)
from hassil.intents import IntentData, Intents, RangeSlotList, TextSlotList
from hassil.numbers import get_rbnf_engine
from homeassistant.components import conversation
from homeassistant.components.homeassistant import async_should_expose
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    area_registry as ar,
    entity_registry as er,
    floor_registry as fr,
    intent,
)
from unicode_rbnf.engine import RbnfError

from .ha_adapter import async_agent_intents

_LOGGER = logging.getLogger(__name__)

# Intents that only work on a device that supports timers.
TIMER_INTENTS = frozenset(
    {
        "HassStartTimer",
        "HassCancelTimer",
        "HassCancelAllTimers",
        "HassIncreaseTimer",
        "HassDecreaseTimer",
        "HassPauseTimer",
        "HassUnpauseTimer",
        "HassTimerStatus",
    }
)
# The lists Home Assistant fills from the home (the default agent's own).
NAME, AREA, FLOOR = "name", "area", "floor"
HOME_LISTS = (NAME, AREA, FLOOR)
# Expansion rules referring to each other: as deep as hassil goes.
MAX_RULE_DEPTH = 24
# Sets of states remembered per compiled grammar; past this the cache starts over.
MAX_CACHED_STEPS = 20_000
# Numbers spelled out for the number vocabulary: hassil's ranges go to 100
# (percent, minutes), colour temperatures to thousands.
SPELLED_NUMBERS = (*range(101), 0.5, 1000, 2000, 10000)

# Fragment automaton arcs (before words are joined).
_EPS, _BREAK, _PIECE, _LIST, _NUMBER, _ANY = range(6)
# Signs a transcript writes for a word ("20%", "21°"): words of their own.
_SIGNS = "%°"
# Words as `names.words` has them, and the signs.
_WORD = re.compile(rf"[^\W_]+(?:'[^\W_]+)*|[{_SIGNS}]")
# In a template: a run of word characters, an apostrophe (joins), a sign,
# or a run of anything else (a word break).
_TOKEN = re.compile(rf"[^\W_]+|'|[{_SIGNS}]|[^\w'{_SIGNS}]+|_+")
# "21.5" and "1,000" are one number: one word of digits.
_DECIMAL_POINT = re.compile(r"(?<=\d)[.,](?=\d)")


def spoken_words(text: str) -> list[str]:
    """Return the words of a text, lower case, with the signs, as they are matched."""
    return [match.group().lower() for match in _WORD.finditer(text)]


@dataclass(frozen=True, slots=True)
class HomeLists:
    """The home's names (with their domains), areas and floors, as written.

    Compared as they are on every check, to see whether the home changed:
    splitting them into words waits until it did.
    """

    names: frozenset[tuple[str, str]]
    areas: frozenset[str]
    floors: frozenset[str]

    def of(self, label: str) -> Iterator[tuple[str, ...]]:
        """Return the word sequences of a list arc's label ("name light switch")."""
        list_name, *domains = label.split()
        texts: Iterable[str]
        if list_name == AREA:
            texts = self.areas
        elif list_name == FLOOR:
            texts = self.floors
        else:
            texts = (
                text for text, domain in self.names if not domains or domain in domains
            )
        for text in texts:
            if sequence := tuple(spoken_words(text)):
                yield sequence


@callback
def home_lists(hass: HomeAssistant) -> HomeLists:
    """Return the home's lists as the default agent makes them.

    The names are the exposed entities' names and aliases, from the same
    helper the agent uses, each with the domain that a sentence may require.
    """
    entities = er.async_get(hass)
    return HomeLists(
        names=frozenset(
            (text, state.domain)
            for state in hass.states.async_all()
            if async_should_expose(hass, conversation.DOMAIN, state.entity_id)
            for text in intent.async_get_entity_aliases(
                hass, entities.async_get(state.entity_id), state=state
            )
        ),
        areas=frozenset(
            text
            for area in ar.async_get(hass).async_list_areas()
            for text in (area.name, *area.aliases)
        ),
        floors=frozenset(
            text
            for floor in fr.async_get(hass).async_list_floors()
            for text in (floor.name, *floor.aliases)
        ),
    )


def _domains(data: IntentData) -> list[str]:
    required = data.requires_context.get("domain")
    if isinstance(required, str):
        return [required]
    if isinstance(required, list):
        return sorted(str(domain) for domain in required)
    return []


class _Fragments:
    """The templates as an automaton over word pieces and word breaks.

    Acyclic: Thompson's construction without repetition, alternatives
    sharing their start state. Lists of the home, numbers and wildcards are
    single arcs with a word break either side.
    """

    def __init__(self, intents: Intents) -> None:
        self.intents = intents
        self.arcs: list[list[tuple[int, str, int]]] = []
        self.finals: set[int] = set()

    def state(self) -> int:
        self.arcs.append([])
        return len(self.arcs) - 1

    def arc(self, start: int, kind: int, label: str = "") -> int:
        end = self.state()
        self.arcs[start].append((kind, label, end))
        return end

    def sentence(self, start: int, expression: Expression, data: IntentData) -> None:
        self.finals.add(self.expression(start, expression, data, 0))

    def expression(
        self, start: int, expression: Expression, data: IntentData, depth: int
    ) -> int:
        if isinstance(expression, TextChunk):
            state = start
            for piece in _TOKEN.findall(expression.text):
                if piece in _SIGNS:
                    state = self.arc(self.arc(state, _BREAK), _PIECE, piece)
                    state = self.arc(state, _BREAK)
                elif piece[0].isalnum() or piece == "'":
                    state = self.arc(state, _PIECE, piece.lower())
                else:
                    state = self.arc(state, _BREAK)
            return state
        if isinstance(expression, Alternative):
            end = self.state()
            for item in expression.items:
                self.arcs[self.expression(start, item, data, depth)].append(
                    (_EPS, "", end)
                )
            return end
        if isinstance(expression, Permutation):
            return self.permutation(start, expression.items, data, depth)
        if isinstance(expression, Group):
            state = start
            for item in expression.items:
                state = self.expression(state, item, data, depth)
            return state
        if isinstance(expression, ListReference):
            return self.list_reference(start, expression, data, depth)
        if isinstance(expression, RuleReference):
            rule = data.expansion_rules.get(
                expression.rule_name
            ) or self.intents.expansion_rules.get(expression.rule_name)
            if rule is None or depth >= MAX_RULE_DEPTH:
                # The agent cannot match it; any words keeps to the safe side.
                return self.word_arc(start, _ANY)
            return self.expression(start, rule.expression, data, depth + 1)
        return start

    def permutation(
        self, start: int, items: list[Expression], data: IntentData, depth: int
    ) -> int:
        """Every order of the items: a state per set of items already said."""
        done: dict[frozenset[int], int] = {frozenset(): start}
        pending = deque([frozenset[int]()])
        while pending:
            said = pending.popleft()
            for index, item in enumerate(items):
                if index in said:
                    continue
                after = said | {index}
                if after not in done:
                    done[after] = self.state()
                    pending.append(after)
                end = self.expression(done[said], item, data, depth)
                self.arcs[end].append((_EPS, "", done[after]))
        return done[frozenset(range(len(items)))]

    def list_reference(
        self, start: int, reference: ListReference, data: IntentData, depth: int
    ) -> int:
        name = reference.list_name
        if reference.is_inline_range:
            return self.word_arc(start, _NUMBER)
        if name == NAME:
            # Names of the domains the sentence is for: hassil holds a name
            # to the sentence's required context.
            return self.word_arc(start, _LIST, " ".join((NAME, *_domains(data))))
        if name in HOME_LISTS:
            return self.word_arc(start, _LIST, name)
        slot_list = data.slot_lists.get(name) or self.intents.slot_lists.get(name)
        if isinstance(slot_list, RangeSlotList):
            return self.word_arc(start, _NUMBER)
        if isinstance(slot_list, TextSlotList):
            before, end = self.arc(start, _BREAK), self.state()
            for value in slot_list.values:
                after = self.expression(before, value.text_in, data, depth)
                self.arcs[self.arc(after, _BREAK)].append((_EPS, "", end))
            return end
        # A wildcard, or a list the agent would not know: any words.
        return self.word_arc(start, _ANY)

    def word_arc(self, start: int, kind: int, label: str = "") -> int:
        """An arc that takes whole words: a word break either side."""
        return self.arc(self.arc(self.arc(start, _BREAK), kind, label), _BREAK)


@dataclass(slots=True)
class _Words:
    """The templates as an automaton over whole words.

    Per state: arcs by word, epsilon arcs, arcs into one of the home's lists
    (a trie, left back to the arc's end), arcs taking a number written in
    digits, and arcs taking a spelled number word or any word (whose ends
    loop back to take more).
    """

    by_word: list[dict[str, list[int]]] = field(default_factory=list)
    empty: list[list[int]] = field(default_factory=list)
    lists: list[list[tuple[str, int]]] = field(default_factory=list)
    digits: list[list[int]] = field(default_factory=list)
    numbers: list[list[int]] = field(default_factory=list)
    anything: list[list[int]] = field(default_factory=list)
    finals: set[int] = field(default_factory=set)
    # The labels of the list arcs: which list, for which domains.
    labels: set[str] = field(default_factory=set)

    def state(self) -> int:
        self.by_word.append({})
        self.empty.append([])
        self.lists.append([])
        self.digits.append([])
        self.numbers.append([])
        self.anything.append([])
        return len(self.by_word) - 1

    def word_chain(self, start: int, chain: list[str], end: int) -> None:
        if not chain:
            self.empty[start].append(end)
            return
        state = start
        for word in chain[:-1]:
            following = self.state()
            self.by_word[state].setdefault(word, []).append(following)
            state = following
        self.by_word[state].setdefault(chain[-1], []).append(end)

    def loop(self, start: int, kind: int, end: int) -> None:
        """A number (or any words) from start to end.

        A number is one word of digits ("20", "21.5" as the heard text is
        read) or one or more spelled number words ("twenty five").
        """
        looping = self.state()
        arcs = self.anything
        if kind == _NUMBER:
            arcs = self.numbers
            self.digits[start].append(end)
        arcs[start].append(looping)
        arcs[looping].append(looping)
        self.empty[looping].append(end)


def _join_words(fragments: _Fragments, starts: list[int]) -> tuple[_Words, list[int]]:
    """Read the fragment automaton out into whole words.

    States where a word may begin (a start, or just after a break or a
    whole-word arc) become the word automaton's states. From each, every
    path is followed to the next break, joining the pieces on the way into
    the word it spells.
    """
    automaton = _Words()
    number: dict[int, int] = {}
    pending: deque[int] = deque()

    def at(fragment_state: int) -> int:
        if (found := number.get(fragment_state)) is None:
            found = number[fragment_state] = automaton.state()
            pending.append(fragment_state)
        return found

    word_starts = [at(start) for start in starts]
    while pending:
        origin = pending.popleft()
        here = number[origin]
        seen: set[tuple[int, str]] = set()
        walk = [(origin, "")]
        while walk:
            state, spelled = walk.pop()
            if (state, spelled) in seen:
                continue
            seen.add((state, spelled))
            if state in fragments.finals:
                if spelled:
                    final = automaton.state()
                    automaton.finals.add(final)
                    automaton.word_chain(here, spoken_words(spelled), final)
                else:
                    automaton.finals.add(here)
            for kind, label, end in fragments.arcs[state]:
                if kind == _EPS:
                    walk.append((end, spelled))
                elif kind == _PIECE:
                    walk.append((end, spelled + label))
                elif kind == _BREAK:
                    automaton.word_chain(here, spoken_words(spelled), at(end))
                else:
                    before = here
                    if spelled:
                        before = automaton.state()
                        automaton.word_chain(here, spoken_words(spelled), before)
                    if kind == _LIST:
                        automaton.lists[before].append((label, at(end)))
                        automaton.labels.add(label)
                    else:
                        automaton.loop(before, kind, at(end))
    return automaton, word_starts


def _number_words(language: str) -> frozenset[str]:
    """Return the words numbers are spelled with in a language (none if unknown)."""
    try:
        engine = get_rbnf_engine(language)
    except ValueError:
        return frozenset()
    found: set[str] = set()
    for value in SPELLED_NUMBERS:
        try:
            result = engine.format_number(value)
        except RbnfError, ValueError:  # no rule for this value in the language
            continue
        for text in result.text_by_ruleset.values():
            found.update(spoken_words(text))
    return frozenset(found)


@dataclass(slots=True)
class _Grammar:
    """A language's sentences as a word automaton, compiled once."""

    intents: Intents
    automaton: _Words
    # Where sentences start: without the timer intents, and the timer intents.
    start: int
    timer_start: int
    skip_phrases: tuple[tuple[str, ...], ...]
    skip_words: frozenset[str]
    number_words: frozenset[str]

    @classmethod
    def compile(cls, intents: Intents) -> _Grammar:
        """Compile the sentences (CPU work for some tenths of a second)."""
        fragments = _Fragments(intents)
        start, timer_start = fragments.state(), fragments.state()
        for known in intents.intents.values():
            first = timer_start if known.name in TIMER_INTENTS else start
            for data in known.data:
                for sentence in data.sentences:
                    fragments.sentence(first, sentence.expression, data)
        automaton, (word_start, word_timer_start) = _join_words(
            fragments, [start, timer_start]
        )
        phrases = {tuple(spoken_words(phrase)) for phrase in intents.skip_words}
        phrases.discard(())
        return cls(
            intents=intents,
            automaton=automaton,
            start=word_start,
            timer_start=word_timer_start,
            # Longest first: "i'd like to" before "i'd like".
            skip_phrases=tuple(sorted(phrases, key=len, reverse=True)),
            skip_words=frozenset(word for phrase in phrases for word in phrase),
            number_words=_number_words(intents.language),
        )


class _Trie:
    """The word sequences of the home's lists, a trie per list arc label."""

    def __init__(
        self, lists: HomeLists, labels: Iterable[str], skip_words: frozenset[str]
    ) -> None:
        self.children: list[dict[str, int]] = []
        self.ends: list[bool] = []
        # Whether some rest of a name below a node has a word that is no skip word.
        self.meaningful: list[bool] = []
        self.roots = {label: self._node() for label in labels}
        for label, root in self.roots.items():
            for sequence in lists.of(label):
                node = root
                for word in sequence:
                    following = self.children[node].get(word)
                    if following is None:
                        following = self.children[node][word] = self._node()
                    node = following
                self.ends[node] = True
        # Children are made after their parents: settle them backwards.
        for node in range(len(self.children) - 1, -1, -1):
            self.meaningful[node] = any(
                word not in skip_words or self.meaningful[child]
                for word, child in self.children[node].items()
            )

    def _node(self) -> int:
        self.children.append({})
        self.ends.append(False)
        self.meaningful.append(False)
        return len(self.children) - 1


# A place in a sentence: a state, or a node of a list's trie and the state
# the list's arc leads to.
type _Place = int | tuple[int, int]


class _Matcher:
    """One grammar with one home's lists: the checks themselves.

    `ends[s]`: some way on from state s ends a sentence (maybe with no word).
    `goes_on[s]`: some way on from s takes at least one word that is no
    skip word and ends a sentence.
    """

    def __init__(self, grammar: _Grammar, lists: HomeLists) -> None:
        self.grammar = grammar
        self.lists = lists
        automaton = grammar.automaton
        self.trie = _Trie(lists, automaton.labels, grammar.skip_words)
        size = len(automaton.by_word)
        trie = self.trie
        filled = {name for name, root in trie.roots.items() if trie.children[root]}
        meaningful = {name for name in filled if trie.meaningful[trie.roots[name]]}
        predecessors: list[list[int]] = [[] for _ in range(size)]
        for state in range(size):
            for targets in automaton.by_word[state].values():
                for following in targets:
                    predecessors[following].append(state)
            for following in (
                *automaton.empty[state],
                *automaton.digits[state],
                *automaton.numbers[state],
                *automaton.anything[state],
            ):
                predecessors[following].append(state)
            for name, end in automaton.lists[state]:
                # An empty list (a home without floors) leads nowhere.
                if name in filled:
                    predecessors[end].append(state)
        self.ends = _backwards(predecessors, automaton.finals, size)
        # Seeds: a meaningful arc into a state from which a sentence ends.
        seeds: set[int] = set()
        for state in range(size):
            if any(
                word not in grammar.skip_words and any(self.ends[t] for t in targets)
                for word, targets in automaton.by_word[state].items()
            ) or any(
                self.ends[end]
                for end in (
                    *automaton.digits[state],
                    *automaton.numbers[state],
                    *automaton.anything[state],
                )
            ):
                seeds.add(state)
            if any(
                name in meaningful and self.ends[end]
                for name, end in automaton.lists[state]
            ):
                seeds.add(state)
        self.goes_on = _backwards(predecessors, seeds, size)
        self._closures: dict[int, frozenset[int]] = {}
        self._steps: dict[tuple[frozenset[_Place], str], frozenset[_Place]] = {}
        self._answers: dict[frozenset[_Place], bool] = {}
        self.starts: dict[bool, frozenset[_Place]] = {
            False: self.closure([grammar.start]),
            True: self.closure([grammar.start, grammar.timer_start]),
        }

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        """Return the states reached from these by epsilon arcs, these included."""
        empty = self.grammar.automaton.empty
        reached = set(states)
        todo = list(reached)
        while todo:
            for following in empty[todo.pop()]:
                if following not in reached:
                    reached.add(following)
                    todo.append(following)
        return frozenset(reached)

    def _closure_of(self, state: int) -> frozenset[int]:
        if (found := self._closures.get(state)) is None:
            found = self._closures[state] = self.closure([state])
        return found

    def step(self, places: frozenset[_Place], word: str) -> frozenset[_Place]:
        """Return where the places lead when the next word is heard."""
        if (found := self._steps.get((places, word))) is not None:
            return found
        automaton = self.grammar.automaton
        children, ends, roots = self.trie.children, self.trie.ends, self.trie.roots
        reached: set[_Place] = set()

        def enter_trie(node: int, after: int) -> None:
            reached.add((node, after))
            if ends[node]:
                reached.update(self._closure_of(after))

        numbers = automaton.numbers if word in self.grammar.number_words else None
        digits = automaton.digits if word[0].isdigit() else None
        for place in places:
            if isinstance(place, tuple):
                node, after = place
                if (child := children[node].get(word)) is not None:
                    enter_trie(child, after)
                continue
            for following in automaton.by_word[place].get(word, ()):
                reached.update(self._closure_of(following))
            for following in automaton.anything[place]:
                reached.update(self._closure_of(following))
            for arcs in (numbers, digits):
                if arcs is not None:
                    for following in arcs[place]:
                        reached.update(self._closure_of(following))
            for name, after in automaton.lists[place]:
                if (child := children[roots[name]].get(word)) is not None:
                    enter_trie(child, after)
        result = frozenset(reached)
        if len(self._steps) >= MAX_CACHED_STEPS:
            self._steps.clear()
            self._answers.clear()
        self._steps[places, word] = result
        return result

    def goes_on_from(self, places: frozenset[_Place]) -> bool:
        """Return whether a sentence may go on from any of the places."""
        if (found := self._answers.get(places)) is not None:
            return found
        answer = False
        for place in places:
            if isinstance(place, tuple):
                node, after = place
                if self.goes_on[after] or (
                    self.trie.meaningful[node] and self.ends[after]
                ):
                    answer = True
                    break
            elif self.goes_on[place]:
                answer = True
                break
        self._answers[places] = answer
        return answer

    def check(self, heard: list[str], timers: bool) -> bool:
        """Return whether a longer sentence starts with the heard words."""
        places = self.starts[timers]
        for word in heard:
            places = self.step(places, word)
            if not places:
                return False
        return self.goes_on_from(places)


def _backwards(
    predecessors: list[list[int]], seeds: Iterable[int], size: int
) -> list[bool]:
    """Return per state whether it reaches a seed (following arcs forwards)."""
    marked = [False] * size
    todo = list(seeds)
    for state in todo:
        marked[state] = True
    while todo:
        for previous in predecessors[todo.pop()]:
            if not marked[previous]:
                marked[previous] = True
                todo.append(previous)
    return marked


def heard_variants(
    text: str, skip_phrases: Iterable[tuple[str, ...]]
) -> list[list[str]]:
    """Return the heard words as the agent may take them.

    Skip words off the start and end, and also (as hassil tries too) taken
    out wherever they are.
    """
    heard = spoken_words(_DECIMAL_POINT.sub("", text))
    phrases = list(skip_phrases)
    trimmed = _trim(heard, phrases)
    everywhere: list[str] = []
    index = 0
    while index < len(heard):
        phrase = next(
            (p for p in phrases if tuple(heard[index : index + len(p)]) == p), None
        )
        if phrase is None:
            everywhere.append(heard[index])
            index += 1
        else:
            index += len(phrase)
    return [trimmed] if everywhere == trimmed else [trimmed, everywhere]


def _trim(heard: list[str], phrases: list[tuple[str, ...]]) -> list[str]:
    start, end = 0, len(heard)
    changed = True
    while changed:
        changed = False
        for phrase in phrases:
            size = len(phrase)
            if end - start >= size and tuple(heard[start : start + size]) == phrase:
                start += size
                changed = True
            elif end - start >= size and tuple(heard[end - size : end]) == phrase:
                end -= size
                changed = True
    return heard[start:end]


class Grammar:
    """Whether a longer sentence this home understands starts with what was heard."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Compile nothing yet: each language when it is first asked about."""
        self.hass = hass
        self._grammars: dict[str, _Grammar] = {}
        self._matchers: dict[str, _Matcher] = {}
        self._lock = asyncio.Lock()

    async def async_goes_on(self, text: str, language: str, *, timers: bool) -> bool:
        """Return True when some longer sentence this home understands starts with `text`.

        `timers`: whether the device supports timers, whose sentences
        include a delayed form of every command ("... in 10 minutes").
        True is the safe answer: when the sentences cannot be had, or the
        heard text has no words.
        """
        try:
            matcher = await self._async_matcher(language)
        except Exception:
            # Sentences this module cannot read (a custom sentence of a kind
            # hassil added later): no answer, so the safe one.
            _LOGGER.exception("Cannot compile the sentences of %s", language)
            return True
        if matcher is None:
            return True
        variants = heard_variants(text, matcher.grammar.skip_phrases)
        if not any(variants):
            return True
        return any(matcher.check(heard, timers) for heard in variants if heard)

    async def _async_matcher(self, language: str) -> _Matcher | None:
        intents = await async_agent_intents(self.hass, language)
        if intents is None:
            return None
        lists = home_lists(self.hass)
        matcher = self._matchers.get(language)
        if (
            matcher is not None
            and matcher.grammar.intents is intents
            and matcher.lists == lists
        ):
            return matcher
        async with self._lock:
            grammar = self._grammars.get(language)
            if grammar is None or grammar.intents is not intents:
                grammar = await self.hass.async_add_executor_job(
                    _Grammar.compile, intents
                )
                self._grammars[language] = grammar
            matcher = self._matchers.get(language)
            if (
                matcher is None
                or matcher.grammar is not grammar
                or matcher.lists != lists
            ):
                matcher = await self.hass.async_add_executor_job(
                    _Matcher, grammar, lists
                )
                self._matchers[language] = matcher
        return matcher
