"""Repair the home's names in a transcript that the local agent does not understand.

A general recogniser does not know this home: it hears "open the living room
lines" where a person said "open the living room blinds". When a transcript
is not a command Home Assistant's own agent understands, the spans of it that
sound like a name the home knows (exposed entities and their aliases, areas,
floors) are put in place of what was heard, one at a time, and each repaired
sentence is matched by the default agent (matching only: nothing is
executed). A repair is kept only when the evidence is strong and exactly one
command comes out of it, with targets that exist; otherwise the transcript is
left as it was heard.

Sounds are compared with Metaphone codes (English), spelling with an edit
distance, so the repair is English only; for other languages it switches
itself off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
import functools
import re
import time

from hassil.recognize import RecognizeResult
from homeassistant.components import conversation
from homeassistant.components.homeassistant import async_should_expose
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import (
    area_registry as ar,
    entity_registry as er,
    floor_registry as fr,
    intent,
)
import jellyfish
from rapidfuzz import fuzz

from .chain import Vocabulary
from .const import DOMAIN
from .ha_adapter import (
    async_agent_sentences,
    async_match_intent,
    async_match_sentence_trigger,
)
from .language import base_language
from .protected import NAME_SLOTS, constraints_of

LANGUAGES = frozenset({"en"})

# How alike a heard span and a name must sound and look (0..1, the mean of
# the two similarities) to be tried, and to be kept.
TRY_SCORE = 0.5
KEEP_SCORE = 0.72
# Repaired sentences matched at most, best first: each costs one match.
MAX_TRIES = 6
# Once a repair matched, candidates that sound this much less alike are not
# rivals worth a match.
MARGIN = 0.1
# Commands are short: a longer transcript is dictation or conversation, and
# comparing every span of it with every name would hold up the event loop.
MAX_WORDS = 30
# The default agent caches what it matched by text and device. A strict-only
# check caches a miss that makes a later full match skip its unexposed and
# unknown-name stages, so the agent would answer "Sorry, I couldn't
# understand that" where it says "not aware of any device called ...". The
# checks made here therefore use a device id of their own, which names no
# device (so no area context either) and shares no cache entry with a run.
CHECK_DEVICE_ID = f"{DOMAIN}_check"

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def words(text: str) -> list[str]:
    """Return the words of a text, lower case, without punctuation."""
    return [match.group().lower() for match in _WORD.finditer(text)]


def sound(word_list: Iterable[str]) -> str:
    """Return the Metaphone code of words, run together."""
    return "".join(jellyfish.metaphone(word) for word in word_list)


@dataclass(frozen=True, slots=True)
class KnownName:
    """A name the home uses for something: how it is written, its words."""

    text: str
    words: tuple[str, ...]
    exposed: bool

    @classmethod
    def of(cls, text: str, exposed: bool = True) -> KnownName | None:
        """Return the name, or None when it has no words."""
        name_words = tuple(words(text))
        if not name_words:
            return None
        return cls(text.strip(), name_words, exposed)


@dataclass(frozen=True, slots=True)
class Repair:
    """A transcript repaired: what was heard, what it became and why."""

    heard: str
    text: str
    # The words heard and the name put in their place.
    span: str
    name: str
    score: float
    intent: str
    milliseconds: float
    # "name" for a name put right, "command" for a whole command.
    kind: str = "name"


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    name: KnownName
    score: float


def _alike(heard: tuple[str, ...], meant: tuple[str, ...]) -> float:
    spelled = fuzz.ratio(" ".join(heard), " ".join(meant)) / 100
    spoken = fuzz.ratio(sound(heard), sound(meant)) / 100
    return (spelled + spoken) / 2


def _may_join(heard: tuple[str, ...], meant: tuple[str, ...]) -> bool:
    """Return whether words may stand for one word, as "bed room" for "bedroom".

    They must begin with the same letter and be about as long: "the
    kitchen" or "kitchen white" is not a way to hear "kitchen", "heat up" is
    one to hear "heater".
    """
    heard_length = sum(len(w) for w in heard)
    meant_length = sum(len(w) for w in meant)
    return (
        heard[0][0] == meant[0][0]
        and 2 * heard_length <= 3 * meant_length
        and 2 * meant_length <= 3 * heard_length
    )


def similarity(span: tuple[str, ...], name: KnownName) -> float:
    """Return how alike a span of words and a name look and sound (0..1).

    The span's words are aligned with the name's: one for one, or two heard
    for one meant ("thermal stat" for "thermostat") or one for two. Words
    heard right are no evidence either way: the score is how alike the
    differing pairs are, weighted by their length. A span that adds or drops
    a word ("office heater" for "Heater") has no alignment: the person said
    something else.
    """
    meant = name.words

    @functools.cache
    def cheapest(i: int, j: int) -> tuple[float, float] | None:
        """Return (penalty, weight) of the best alignment of span[i:], meant[j:]."""
        if i == len(span) and j == len(meant):
            return 0.0, 0.0
        best: tuple[float, float] | None = None
        for di, dj in ((1, 1), (2, 1), (1, 2)):
            if i + di > len(span) or j + dj > len(meant):
                continue
            heard_part, meant_part = span[i : i + di], meant[j : j + dj]
            if (di, dj) != (1, 1) and not _may_join(heard_part, meant_part):
                continue
            rest = cheapest(i + di, j + dj)
            if rest is None:
                continue
            penalty, weight = rest
            if heard_part != meant_part:
                size = sum(len(w) for w in meant_part)
                penalty += size * (1 - _alike(heard_part, meant_part))
                weight += size
            if best is None or penalty < best[0]:
                best = (penalty, weight)
        return best

    found = cheapest(0, 0)
    if found is None or not found[1]:
        return 0.0
    penalty, weight = found
    return 1 - penalty / weight


@callback
def known_names(hass: HomeAssistant) -> list[KnownName]:
    """Return the names Assist knows: entities (exposed or not), areas, floors."""
    entities = er.async_get(hass)
    texts: dict[str, bool] = {}

    def add(text: object, exposed: bool) -> None:
        # Entity aliases may hold a marker for "the entity's own name".
        if isinstance(text, str) and text.strip():
            texts[text] = texts.get(text, False) or exposed

    for state in hass.states.async_all():
        exposed = async_should_expose(hass, conversation.DOMAIN, state.entity_id)
        add(state.name, exposed)
        if (entry := entities.async_get(state.entity_id)) is not None:
            for alias in entry.aliases:
                add(alias, exposed)
    for area in ar.async_get(hass).async_list_areas():
        add(area.name, True)
        for alias in area.aliases:
            add(alias, True)
    for floor in fr.async_get(hass).async_list_floors():
        add(floor.name, True)
        for alias in floor.aliases:
            add(alias, True)
    return [
        name
        for text, exposed in texts.items()
        if (name := KnownName.of(text, exposed)) is not None
    ]


def candidates(heard: list[str], names: list[KnownName]) -> list[_Candidate]:
    """Return the spans of the heard words that sound like a name, best first.

    A span that already is a known name, or holds a number (a value, not a
    name), is left alone.
    """
    exact = {name.words for name in names}
    found: dict[tuple[int, int, str], _Candidate] = {}
    for name in names:
        size = len(name.words)
        for length in range(max(1, size - 1), size + 2):
            for start in range(len(heard) - length + 1):
                end = start + length
                span = tuple(heard[start:end])
                if span in exact or any(w.isdigit() for w in span):
                    continue
                # A span that stops one word short of a word of the name
                # would write that word twice ("the Living Room Lamp lamp").
                if (start > 0 and heard[start - 1] == name.words[0]) or (
                    end < len(heard) and heard[end] == name.words[-1]
                ):
                    continue
                score = similarity(span, name)
                if score < TRY_SCORE:
                    continue
                best = found.get((start, end, name.text))
                if best is None or score > best.score:
                    found[start, end, name.text] = _Candidate(start, end, name, score)
    return sorted(found.values(), key=lambda c: -c.score)


_TEMPLATE_REFERENCE = re.compile(r"\{[^}]*\}|<[^>]*>")
# Words sent to steer a server: enough for every sentence of the local agent.
MAX_TERMS = 1000


def template_words(templates: Iterable[str], limit: int = MAX_TERMS) -> list[str]:
    """Return the literal words of hassil sentence templates, most used first."""
    counts: Counter[str] = Counter()
    for template in templates:
        counts.update(words(_TEMPLATE_REFERENCE.sub(" ", template)))
    return [word for word, _ in counts.most_common(limit)]


class NameRepair:
    """Repair names in transcripts with the default agent as the judge."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Use the default agent of `hass`."""
        self.hass = hass
        self._terms: dict[str, tuple[str, ...]] = {}

    async def async_vocabulary(self, language: str) -> Vocabulary:
        """Return the exposed names and the words of the local agent's sentences."""
        names = tuple(name.text for name in known_names(self.hass) if name.exposed)
        if (terms := self._terms.get(language)) is None:
            templates = await async_agent_sentences(self.hass, language)
            terms = self._terms[language] = tuple(template_words(templates))
        return Vocabulary(names=names, terms=terms)

    async def _recognize(
        self, text: str, language: str, strict: bool = True
    ) -> RecognizeResult | None:
        # The same cache flaw within the checks: a full match must not find
        # the strict check's miss.
        device_id = CHECK_DEVICE_ID if strict else f"{CHECK_DEVICE_ID}_all"
        return await async_match_intent(
            self.hass, conversation_input(text, language, device_id), strict=strict
        )

    async def async_match(self, text: str, language: str) -> RecognizeResult | None:
        """Match a sentence with exposed names only, with no speaker's context."""
        return await self._recognize(text, language)

    async def async_names_the_untouchable(self, text: str, language: str) -> bool:
        """Return whether a sentence names something Assist knows but may not touch.

        Such a sentence is no mishearing: it is left for the agent to refuse.
        """
        loose = await self._recognize(text, language, strict=False)
        return loose is not None and not loose.unmatched_entities

    async def async_is_sentence_trigger(self, text: str, language: str) -> bool:
        """Return whether an automation's own sentence matches the text."""
        return await async_match_sentence_trigger(
            self.hass, conversation_input(text, language, CHECK_DEVICE_ID)
        )

    async def async_understood(self, text: str, language: str) -> bool:
        """Return whether the local agent understands a command with real targets."""
        return self.understood(await self._recognize(text, language))

    def understood(self, result: RecognizeResult | None) -> bool:
        """Return whether a match is whole and names targets that exist and are exposed."""
        if result is None or result.unmatched_entities:
            return False
        if not set(NAME_SLOTS) & result.entities.keys():
            return True
        return intent.async_match_targets(self.hass, constraints_of(result)).is_match

    async def async_command_as_is(self, text: str, language: str) -> bool:
        """Return whether the text is a command as it is: the local agent
        understands it with real targets, or an automation's sentence matches."""
        return await self.async_understood(
            text, language
        ) or await self.async_is_sentence_trigger(text, language)

    async def async_repair(
        self, heard: str, language: str, *, checked: bool = False
    ) -> Repair | None:
        """Return the repair of a transcript, or None to keep it as heard.

        `checked`: the caller already found that it is no command as it is.
        """
        started = time.perf_counter()
        if base_language(language) not in LANGUAGES or not heard.strip():
            return None
        if not checked and await self.async_command_as_is(heard, language):
            return None
        if await self.async_names_the_untouchable(heard, language):
            return None
        matches = list(_WORD.finditer(heard))
        if len(matches) > MAX_WORDS:
            return None
        names = known_names(self.hass)
        heard_words = [m.group().lower() for m in matches]
        outcomes: dict[
            tuple[str, frozenset[tuple[str, str]]], tuple[_Candidate, str]
        ] = {}
        best_match = 0.0
        # The search compares every span with every name: CPU work, done in
        # the executor, not on the event loop.
        found = await self.hass.async_add_executor_job(candidates, heard_words, names)
        exposed = [c for c in found if c.name.exposed]
        for tries, candidate in enumerate(exposed):
            # Below KEEP_SCORE a candidate is only worth a match as a rival
            # of one that matched.
            floor = best_match - MARGIN if best_match else KEEP_SCORE
            if tries == MAX_TRIES or candidate.score < floor:
                break
            start = matches[candidate.start].start()
            end = matches[candidate.end - 1].end()
            text = heard[:start] + candidate.name.text + heard[end:]
            result = await self._recognize(text, language)
            if result is None or not _fills_slot(result, candidate.name):
                continue
            if not self.understood(result):
                continue
            best_match = max(best_match, candidate.score)
            key = (
                result.intent.name,
                frozenset((k, str(e.value)) for k, e in result.entities.items()),
            )
            outcomes.setdefault(key, (candidate, text))
        if len(outcomes) != 1:
            return None
        (intent_name, _), (candidate, text) = next(iter(outcomes.items()))
        span = tuple(heard_words[candidate.start : candidate.end])
        # The evidence must be strong, and no name that may not be used may
        # sound more like what was heard.
        if candidate.score < KEEP_SCORE or any(
            not other.exposed and similarity(span, other) > candidate.score
            for other in names
        ):
            return None
        return Repair(
            heard=heard.strip(),
            text=text.strip(),
            span=" ".join(span),
            name=candidate.name.text,
            score=round(candidate.score, 3),
            intent=intent_name,
            milliseconds=_since(started),
        )


def conversation_input(
    text: str, language: str, device_id: str | None = None
) -> conversation.ConversationInput:
    """Return a sentence as input for Home Assistant's own agent."""
    return conversation.ConversationInput(
        text=text,
        context=Context(),
        conversation_id=None,
        device_id=device_id,
        satellite_id=None,
        language=language,
        agent_id=conversation.HOME_ASSISTANT_AGENT,
    )


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _fills_slot(result: RecognizeResult, name: KnownName) -> bool:
    """Return whether the repaired name is what fills a name slot of the match."""
    return any(
        tuple(words(str(entity.text))) == name.words
        or tuple(words(str(entity.value))) == name.words
        for slot, entity in result.entities.items()
        if slot in NAME_SLOTS
    )
