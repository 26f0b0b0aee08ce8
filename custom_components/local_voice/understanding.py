"""What an assistant's agent makes of a sentence: act on it, repair it, or ask.

The assistant's conversation agent (conversation.py) stands in front of
Home Assistant's default agent, which still does all the acting: its
intents, answers and sentence triggers stay as they are. In front of it:

- A command it understands as heard is handed on, unless it is protected
  (protected.py): then the assistant says it as a question ("Unlock the
  front door?") and keeps the conversation open; "yes" hands it on, anything
  else, or no answer at all, leaves things as they are, and says so.
- A command it does not understand is repaired, in English: first the names
  (names.py), then the whole command (closest.py: verbs and numbers too).
  A repair never reverses what the speaker said (lock/unlock, open/close,
  on/off, arm/disarm, also inside names). It is acted on only when it is
  clearly the closest command, harmless, and adds no direction the speaker
  did not say; when it is only close, or protected, it is asked about;
  otherwise the sentence goes to the default agent as heard, which refuses
  it as before.
- What was typed by an administrator, or sent by an automation, is not
  asked about: neither was misheard, and an administrator may change any
  of it anyway.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import StrEnum
import logging
import re
import time

from hassil.models import UnmatchedTextEntity
from hassil.recognize import MISSING_ENTITY, RecognizeResult
from homeassistant.components import conversation
from homeassistant.core import HomeAssistant
from homeassistant.helpers import intent

from .closest import CommandSpace, flips, polarity
from .ha_adapter import async_match_intent
from .language import base_language
from .names import LANGUAGES, KnownName, NameRepair, Repair, similarity, words
from .protected import (
    NAME_SLOTS,
    READ_ONLY_INTENTS,
    Protection,
    asks_for,
    guards_the_home,
    targets,
)

_LOGGER = logging.getLogger(__name__)

# Home Assistant turns on a thing that is only named ("the heater"); asked
# about, such a command says its action: the direction word and the words
# put in front of the name.
SAID_IN_FULL = {
    intent.INTENT_TURN_ON: ("on", "turn on"),
    intent.INTENT_TURN_OFF: ("off", "turn off"),
}
# A question is answered in the conversation that asked it, within this time.
QUESTION_SECONDS = 60.0
# Conversations whose last sentence was heard by an assistant's STT.
SPOKEN_KEPT = 64
# Words that say yes; at least one must be said ("please" or "it" alone is
# no yes), and the rest may go with them ("yes please", "sure, do it").
YES_HEADS = frozenset(
    {
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "confirm",
        "confirmed",
        "correct",
        "right",
        "affirmative",
        "do",
        "go",
        "absolutely",
    }
)
YES_WORDS = YES_HEADS | {"please", "it", "ahead"}
# Words that say no; one must be said, the rest may go with them ("no
# thanks", "cancel that", "never mind").
NO_HEADS = frozenset(
    {"no", "nope", "nah", "cancel", "stop", "don't", "dont", "never", "not"}
)
NO_WORDS = NO_HEADS | {"do", "mind", "thanks", "thank", "you", "that", "it", "now"}
# Whole-command repair: a proposal this alike is acted on when no other
# meaning comes within MARGIN of it; one this alike is asked about.
ACT_SCORE = 0.85
ASK_SCORE = 0.7
MARGIN = 0.08
# How alike (names.similarity) a repaired command's names must be to some
# words that were heard for the repair to be worth a question.
NAME_ALIKE = 0.6
# Proposals matched by the default agent at most, best first.
MAX_PROPOSALS = 5


# Home Assistant's own words for a sentence it did not understand.
NOT_UNDERSTOOD = "Sorry, I couldn't understand that"
# What an assistant's STT reports when a question was met with silence.
NO_ANSWER = "…"
# The record's name for a question asked.
ASKED = "asked"


class Answer(StrEnum):
    """How a question was answered."""

    CONFIRMED = "confirmed"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"


class Repaired(StrEnum):
    """Which repair made a sentence a command."""

    NAME = "name"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class Question:
    """A command waiting for its "yes"."""

    text: str
    asked_at: float
    repaired: Repaired | None
    # Whether it would change something (else it asks for a state).
    acts: bool = True

    @property
    def left_undone(self) -> str:
        """Return what is not done on a no: "I won't unlock the front door"."""
        return f"I won't {_as_clause(self.text)}" if self.acts else "I'll leave it"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the agent did with one sentence (the record; no words)."""

    asked: bool = False
    answer: Answer | None = None
    repaired: Repaired | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The agent's answer to a sentence: its own speech, or a command to hand on."""

    outcome: Outcome
    # Hand this sentence to the default agent...
    command: str | None = None
    # ...or say this, keeping the conversation open when it is a question.
    speech: str | None = None
    question: bool = False
    repair: Repair | None = None
    # Said first: the answer to a question that the sentence did not answer.
    preface: str | None = None
    # Its speech is a refusal: nothing was understood well enough.
    refused: bool = False


@dataclass(frozen=True, slots=True)
class _Proposal:
    text: str
    kind: Repaired
    # Whether it may be acted on without a question.
    sure: bool
    repair: Repair


def says_yes(text: str) -> bool:
    """Return whether an answer is a yes: yes words only, one of them a real yes."""
    said = words(text)
    return bool(said) and set(said) <= YES_WORDS and bool(set(said) & YES_HEADS)


def says_no(text: str) -> bool:
    """Return whether an answer is a plain no: no words only, one of them a real no."""
    said = words(text)
    return bool(said) and set(said) <= NO_WORDS and bool(set(said) & NO_HEADS)


# Courtesy around a command, left out when it is said back: "Please unlock
# the front door" is asked as "Unlock the front door?".
_COURTESY_BEFORE = re.compile(
    r"^(?:(?:please|kindly|(?:can|could|would|will) you)\b[\s,]*)+", re.IGNORECASE
)
_COURTESY_AFTER = re.compile(r"(?:[\s,]+(?:please|thanks|thank you))+$", re.IGNORECASE)


def _bare(text: str) -> str:
    """Return the command without its end mark and courtesy words."""
    text = text.strip().rstrip(".!?").strip()
    bare = _COURTESY_AFTER.sub("", _COURTESY_BEFORE.sub("", text)).strip(" ,")
    return bare or text


def as_question(text: str) -> str:
    """Return a command as a question: "Unlock the front door?"."""
    text = _bare(text)
    return f"{text[:1].upper()}{text[1:]}?"


def _as_clause(text: str) -> str:
    text = _bare(text)
    return f"{text[:1].lower()}{text[1:]}"


def _meaning(result: RecognizeResult) -> tuple[str, frozenset[tuple[str, str]]]:
    return (
        result.intent.name,
        frozenset((k, str(e.value)) for k, e in result.entities.items()),
    )


@dataclass(frozen=True, slots=True)
class Spoken:
    """A sentence an assistant's speech-to-text heard, and whether it is in doubt."""

    text: str
    doubt: bool = False


class Understanding:
    """Decide, sentence by sentence, what each assistant's agent does."""

    def __init__(
        self, hass: HomeAssistant, names: NameRepair, commands: CommandSpace
    ) -> None:
        """Use the entry's name repair and the home's command space."""
        self.hass = hass
        self._names = names
        self._commands = commands
        self._questions: dict[str, Question] = {}
        self._spoken: OrderedDict[str, Spoken] = OrderedDict()

    def note_spoken(
        self, conversation_id: str, text: str, *, doubt: bool = False
    ) -> None:
        """Note that an assistant's STT heard this sentence in this conversation.

        `doubt`: the speech-to-text servers heard different commands in it
        (chain.py by meaning), so the agent asks before acting on it.
        """
        self._spoken.pop(conversation_id, None)
        self._spoken[conversation_id] = Spoken(text, doubt)
        while len(self._spoken) > SPOKEN_KEPT:
            self._spoken.popitem(last=False)

    def waiting_for_answer(self, conversation_id: str) -> bool:
        """Return whether a question of this conversation waits for its answer."""
        question = self._questions.get(conversation_id)
        return question is not None and not self._expired(question)

    def _expired(self, question: Question) -> bool:
        return time.monotonic() - question.asked_at > QUESTION_SECONDS

    def forget(self) -> None:
        """Drop every open question (the entry unloads)."""
        self._questions.clear()
        self._spoken.clear()

    async def async_decide(
        self,
        user_input: conversation.ConversationInput,
        conversation_id: str,
        *,
        protection: Protection,
        repair: bool,
    ) -> Decision:
        """Decide what to do with a sentence of a conversation; nothing is done here."""
        noted = self._spoken.pop(conversation_id, None)
        spoken = noted is not None
        doubt = noted is not None and noted.doubt and noted.text == user_input.text
        question = self._questions.pop(conversation_id, None)
        if question is None or self._expired(question):
            return await self._async_decide(
                user_input, conversation_id, spoken, protection, repair, doubt=doubt
            )
        text = user_input.text
        if says_yes(text):
            return Decision(
                Outcome(answer=Answer.CONFIRMED, repaired=question.repaired),
                command=question.text,
            )
        if not words(text):
            return Decision(
                Outcome(answer=Answer.NO_ANSWER),
                speech=f"No answer, so {question.left_undone}.",
            )
        declined = f"OK, {question.left_undone}."
        if says_no(text):
            return Decision(Outcome(answer=Answer.DECLINED), speech=declined)
        # Something else was said: not the answer, so no; and a sentence of
        # its own, which goes its own way (it may ask in turn).
        decision = await self._async_decide(
            user_input, conversation_id, spoken, protection, repair, doubt=doubt
        )
        return replace(
            decision,
            outcome=replace(decision.outcome, answer=Answer.DECLINED),
            preface=declined,
        )

    async def _async_decide(
        self,
        user_input: conversation.ConversationInput,
        conversation_id: str,
        spoken: bool,
        protection: Protection,
        repair: bool,
        *,
        doubt: bool = False,
    ) -> Decision:
        """Decide what to do with a sentence that answers no question.

        `doubt`: another server heard something else, so even an understood
        command is asked about.
        """
        text = user_input.text
        language = user_input.language
        may_skip = not spoken and await self._async_trusted(user_input)

        if await self._names.async_is_sentence_trigger(text, language):
            return Decision(Outcome(), command=text)
        result = await self._async_match(user_input, text, strict=True)
        loose = await self._async_match(user_input, text)
        if result is not None and self._names.understood(result):
            if doubt or (not may_skip and asks_for(self.hass, result, protection)):
                asked = await self._async_in_full(user_input, text, result)
                return self._ask(conversation_id, asked, result, None, None)
            return Decision(Outcome(), command=text)
        proposal: _Proposal | None = None
        if repair and base_language(language) in LANGUAGES:
            try:
                proposal = await self._async_repair(user_input, text)
            except Exception:
                # A repair is a help: the sentence goes on as heard, which
                # the default agent did not understand either.
                _LOGGER.exception("Could not repair %r", text)
        if proposal is None:
            return _refusal(text, language, loose, self._names)
        repaired = await self._async_match(user_input, proposal.text, strict=True)
        if (
            repaired is None
            or not self._names.understood(repaired)
            or not _names_sound_alike(text, repaired)
        ):
            return _refusal(text, language, loose, self._names)
        sure = (
            proposal.sure
            and (proposal.kind is Repaired.NAME or _names_heard(text, repaired))
            and not any(map(guards_the_home, targets(self.hass, repaired)))
        )
        if not sure or asks_for(self.hass, repaired, protection):
            asked = await self._async_in_full(user_input, proposal.text, repaired)
            return self._ask(
                conversation_id, asked, repaired, proposal.kind, proposal.repair
            )
        return Decision(
            Outcome(repaired=proposal.kind),
            command=proposal.text,
            repair=proposal.repair,
        )

    async def _async_in_full(
        self,
        user_input: conversation.ConversationInput,
        text: str,
        result: RecognizeResult,
    ) -> str:
        """Return the command to ask about, its action said.

        "the Kitchen Light" is asked as "Turn on the Kitchen Light?" (and a
        no answered "I won't turn on the Kitchen Light"), when that is the
        same command to Home Assistant; a yes hands on the words asked.
        """
        said = SAID_IN_FULL.get(result.intent.name)
        if said is None or polarity(text)[said[0]]:
            return text
        full = f"{said[1]} {_as_clause(text)}"
        again = await self._async_match(user_input, full, strict=True)
        if again is None or _meaning(again) != _meaning(result):
            return text
        return full

    def _ask(
        self,
        conversation_id: str,
        text: str,
        result: RecognizeResult,
        kind: Repaired | None,
        repair: Repair | None,
    ) -> Decision:
        self._questions[conversation_id] = Question(
            text,
            time.monotonic(),
            kind,
            acts=result.intent.name not in READ_ONLY_INTENTS,
        )
        return Decision(
            Outcome(asked=True, repaired=kind),
            speech=as_question(text),
            question=True,
            repair=repair,
        )

    async def _async_trusted(self, user_input: conversation.ConversationInput) -> bool:
        """Return whether the sentence came from an administrator or an automation.

        A satellite's or a browser's command always carries its device or its
        user; an automation's `conversation.process` carries neither.
        """
        user_id = user_input.context.user_id
        if user_id is None:
            return user_input.device_id is None and user_input.satellite_id is None
        user = await self.hass.auth.async_get_user(user_id)
        return user is not None and user.is_admin

    async def _async_match(
        self,
        user_input: conversation.ConversationInput,
        text: str,
        *,
        strict: bool = False,
    ) -> RecognizeResult | None:
        """Match a sentence as the default agent would for this speaker.

        `strict`: the exposed names as they are, nothing fuzzy. The default
        agent remembers one match per sentence and speaker, only its last
        stage: a strict miss remembered under the sentence itself would make
        its own whole match skip the stages that explain a refusal, and a
        whole match remembered first would answer a strict one with a fuzzy
        guess. So a strict match is made of the sentence with a space after
        it, which matches the same and is remembered apart.
        """
        if strict:
            text = f"{text} "
        return await async_match_intent(
            self.hass,
            conversation.ConversationInput(
                text=text,
                context=user_input.context,
                conversation_id=None,
                device_id=user_input.device_id,
                satellite_id=user_input.satellite_id,
                language=user_input.language,
                agent_id=conversation.HOME_ASSISTANT_AGENT,
            ),
            strict=strict,
        )

    async def _async_repair(
        self, user_input: conversation.ConversationInput, heard: str
    ) -> _Proposal | None:
        """Return the command the speaker most likely meant, or None."""
        language = user_input.language
        started = time.perf_counter()
        name_repair = await self._names.async_repair(heard, language, checked=True)
        if name_repair is not None and not flips(heard, name_repair.text):
            return _Proposal(
                name_repair.text,
                Repaired.NAME,
                sure=not _adds_direction(heard, name_repair.text),
                repair=name_repair,
            )
        if await self._names.async_names_the_untouchable(heard, language):
            return None
        ranked: list[tuple[float, str, RecognizeResult]] = []
        seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
        for proposal in await self._commands.async_closest(
            heard, language, limit=MAX_PROPOSALS
        ):
            if flips(heard, proposal.text):
                continue
            result = await self._names.async_match(proposal.text, language)
            if result is None or not self._names.understood(result):
                continue
            if (meaning := _meaning(result)) in seen:
                continue
            seen.add(meaning)
            ranked.append((proposal.score, proposal.text, result))
        if not ranked or ranked[0][0] < ASK_SCORE:
            return None
        score, text, result = ranked[0]
        runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
        sure = (
            score >= ACT_SCORE
            and score - runner_up >= MARGIN
            and not _adds_direction(heard, text)
        )
        return _Proposal(
            text,
            Repaired.COMMAND,
            sure=sure,
            repair=Repair(
                heard=heard.strip(),
                text=text,
                span=heard.strip(),
                name=text,
                score=round(score, 3),
                intent=result.intent.name,
                milliseconds=round((time.perf_counter() - started) * 1000, 1),
                kind=Repaired.COMMAND,
            ),
        )


def _refusal(
    text: str, language: str, loose: RecognizeResult | None, names: NameRepair
) -> Decision:
    """Return the answer to a sentence that is no command of this home.

    Home Assistant's agent, handed such a sentence, tries fuzzy matching
    that acts on whatever is closest ("turn on the dining room lamp" on the
    living room lamp, "don't unlock the front door" as an unlock). So it is
    handed only what it will refuse by itself: a match of something that is
    not exposed. The rest is refused here, in its words (English; other
    languages go to it as in Home Assistant).
    """
    if base_language(language) not in LANGUAGES or (
        loose is not None
        and not loose.unmatched_entities
        and not names.understood(loose)
    ):
        return Decision(Outcome(), command=text)
    speech = NOT_UNDERSTOOD
    if loose is not None:
        for slot, kind in (("name", "device"), ("area", "area"), ("floor", "floor")):
            unmatched = loose.unmatched_entities.get(slot)
            if isinstance(unmatched, UnmatchedTextEntity) and (
                said := unmatched.text.strip()
            ) not in ("", MISSING_ENTITY):
                speech = f"Sorry, I am not aware of any {kind} called {said}"
                break
    return Decision(Outcome(), speech=speech, refused=True)


def _names_sound_alike(heard: str, result: RecognizeResult) -> bool:
    """Return whether every name a match acts on sounds like words that were heard.

    "turn on the disco ball" is not worth asking "Turn on the Heater?" about,
    however alike the rest of the sentence is.
    """
    said = words(heard)
    for slot in NAME_SLOTS:
        if (entity := result.entities.get(slot)) is None:
            continue
        name = KnownName.of(str(entity.text or entity.value))
        if name is None:
            continue
        size = len(name.words)
        if _said_in(said, list(name.words)):
            continue
        spans = (
            tuple(said[start : start + length])
            for length in range(max(1, size - 1), size + 2)
            for start in range(len(said) - length + 1)
        )
        if max((similarity(span, name) for span in spans), default=0.0) < NAME_ALIKE:
            return False
    return True


def _names_heard(heard: str, result: RecognizeResult) -> bool:
    """Return whether every name a match acts on was heard as it is.

    A whole-command repair that puts another name in ("bathroom" to
    "Bedroom") is asked about, never done at once.
    """
    said = words(heard)
    for slot in NAME_SLOTS:
        if (entity := result.entities.get(slot)) is None:
            continue
        if not _said_in(said, words(str(entity.text or entity.value))):
            return False
    return True


def _said_in(said: list[str], name: list[str]) -> bool:
    """Return whether the words of a name were said, in a row."""
    return any(
        said[i : i + len(name)] == name for i in range(len(said) - len(name) + 1)
    )


def _adds_direction(heard: str, proposed: str) -> bool:
    """Return whether a proposal says a direction the speaker did not say."""
    return bool(polarity(proposed) - polarity(heard))
