"""What a said sentence did to the demo home: right, declined, wrong or failed.

For the recognition bench (tests/recognition_bench.py). An assistant may ask
before it acts ("Unlock the front door?", the pipeline's intent output then
has `continue_conversation`); the bench answers like the person who spoke:
"yes" when the question proposes what was meant, else "no". Whether the
proposal is what was meant is decided without acting: the question (less its
"?") and the sentence that was said are each matched by Home Assistant's own
agent, and their intents, targeted entities and other slots compared.

Every outcome is judged by the home, never by what the assistant says it
did: the states of the demo home's entities before and after, and every
service call that reaches one of them (so that turning on a light that is
already on counts as an action too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
import re
from typing import Any

from homeassistant.components import conversation
from homeassistant.const import ATTR_ENTITY_ID, EVENT_CALL_SERVICE
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.helpers import intent

from custom_components.local_voice.ha_adapter import async_match_intent
from custom_components.local_voice.names import conversation_input
from scripts.demo_home import COUPLED
from tests.pipeline_helpers import Run

RIGHT, DECLINED, WRONG, FAILED = "right", "declined", "wrong", "failed"
OUTCOMES = (RIGHT, DECLINED, WRONG, FAILED)
YES, NO = "yes", "no"

# Questions after questions: the bench answers this many in one exchange.
MAX_QUESTIONS = 2

# An intent, the entities it targets, and its other slots.
type Meaning = tuple[str, frozenset[str], frozenset[tuple[str, str]]]

_TARGET_SLOTS = ("name", "area", "floor", "domain", "device_class")
# Ways a proposal may be put before the proposed command itself.
_LEAD_INS = re.compile(
    r"^\s*(?:did you mean|do you mean|do you want me to|should i|shall i"
    r"|you want me to|you said)\s*:?\s*",
    re.IGNORECASE,
)


def _values(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value]
    return [str(value)]


async def async_meaning(hass: HomeAssistant, text: str) -> Meaning | None:
    """Return what Home Assistant's agent would do with a sentence, doing nothing.

    Exact names of exposed entities only: a proposal names things as the home
    does. None when the agent understands no command in it.
    """
    result = await async_match_intent(hass, conversation_input(text, "en"), strict=True)
    if result is None:
        return None
    slots = {key: entity.value for key, entity in result.entities.items()}
    names, areas, floors = (_values(slots.get(k)) for k in ("name", "area", "floor"))
    constraints = intent.MatchTargetsConstraints(
        name=names[0] if names else None,
        area_name=areas[0] if areas else None,
        floor_name=floors[0] if floors else None,
        domains=_values(slots.get("domain")),
        device_classes=_values(slots.get("device_class")),
        assistant=conversation.DOMAIN,
    )
    targets: frozenset[str] = frozenset()
    if constraints.has_constraints:
        match = intent.async_match_targets(hass, constraints)
        if match.is_match:
            targets = frozenset(state.entity_id for state in match.states)
    rest = frozenset(
        (key, str(value))
        for key, value in slots.items()
        if key not in _TARGET_SLOTS or not targets
    )
    return result.intent.name, targets, rest


async def async_reply(
    hass: HomeAssistant, question: str, intended: Meaning | None
) -> str:
    """Return the answer of the person who meant `intended`: yes or no."""
    if intended is None:
        return NO
    proposal = question.strip().rstrip("?").strip()
    for text in dict.fromkeys((proposal, _LEAD_INS.sub("", proposal))):
        if text and await async_meaning(hass, text) == intended:
            return YES
    return NO


@dataclass
class _Questions:
    """The questions an agent asked about a sentence, and the bench's replies."""

    questions: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    @property
    def asked(self) -> bool:
        """Return whether the agent asked."""
        return bool(self.questions)

    @property
    def declined(self) -> bool:
        """Return whether the bench said no to the last question."""
        return bool(self.replies) and self.replies[-1] == NO


@dataclass
class Exchange(_Questions):
    """A sentence said to an assistant and the answers to its questions."""

    runs: list[Run] = field(default_factory=list)
    # How each reply was given: "voice" (synthesized, through speech-to-text)
    # or "text" (only when no audio could be made).
    replies_by: list[str] = field(default_factory=list)

    @property
    def last(self) -> Run:
        """Return the last run: the one whose answer ends the exchange."""
        return self.runs[-1]

    @property
    def heard(self) -> list[str]:
        """Return the transcript of each run (the reply runs' included)."""
        return [run.transcript if not run.errors else "" for run in self.runs]


async def async_exchange(
    hass: HomeAssistant,
    first: Callable[[], Awaitable[Run]],
    reply: Callable[[str, str], Awaitable[tuple[Run, str]]],
    intended: Meaning | None,
) -> Exchange:
    """Run the sentence; answer each question (at most MAX_QUESTIONS).

    `reply(answer, conversation_id)` says the answer in that conversation and
    returns its run and how it was said.
    """
    exchange = Exchange(runs=[await first()])
    while exchange.last.asks and len(exchange.questions) < MAX_QUESTIONS:
        question = exchange.last.answer
        answer = await async_reply(hass, question, intended)
        conversation_id = exchange.last.conversation_id
        assert conversation_id, "a question without a conversation to answer in"
        run, by = await reply(answer, conversation_id)
        await hass.async_block_till_done()
        exchange.questions.append(question)
        exchange.replies.append(answer)
        exchange.replies_by.append(by)
        exchange.runs.append(run)
    return exchange


_OTHER_TARGETS = ("area_id", "device_id", "floor_id", "label_id")

type Snapshot = dict[str, tuple[str, dict[str, Any]]]


@dataclass
class Touched:
    """What happened to the home: changed states and service calls on it."""

    changed: dict[str, str]
    calls: list[str]
    # Entities a call targeted, and calls that targeted no entity by id
    # (an area, a device, all): never intended by a command.
    called: frozenset[str]
    untargeted: list[str]

    @property
    def entities(self) -> frozenset[str]:
        """Return every entity that changed or was acted on."""
        return frozenset(self.changed) | self.called

    def describe(self) -> str:
        """Return what happened, in short."""
        parts = [f"{e}: {what}" for e, what in sorted(self.changed.items())]
        parts += [f"call {call}" for call in self.calls if call not in parts]
        return "; ".join(parts) or "nothing"


class HomeWatch:
    """Snapshot the home's entities and hear every service call on them."""

    def __init__(self, hass: HomeAssistant, entity_ids: Iterable[str]) -> None:
        """Watch these entities (the demo home's)."""
        self.hass = hass
        self.entity_ids = frozenset(entity_ids)
        self.domains = {entity.split(".")[0] for entity in self.entity_ids} | {
            "homeassistant"
        }
        self._before: Snapshot = {}
        self._calls: list[tuple[str, list[str] | None]] | None = None
        hass.bus.async_listen(EVENT_CALL_SERVICE, self._on_call)

    def snapshot(self) -> Snapshot:
        """Return the state and attributes of each watched entity."""
        snap: Snapshot = {}
        for entity in self.entity_ids:
            state = self.hass.states.get(entity)
            snap[entity] = (
                (state.state, dict(state.attributes)) if state else ("absent", {})
            )
        return snap

    def start(self) -> None:
        """Remember the home as it is; hear calls from now on."""
        self._before = self.snapshot()
        self._calls = []

    def stop(self) -> Touched:
        """Return what changed and what was called since `start`."""
        after = self.snapshot()
        changed = {
            entity: _change(self._before[entity], after[entity])
            for entity in self.entity_ids
            if self._before[entity] != after[entity]
        }
        calls, called, untargeted = [], set(), []
        for call, targets in self._calls or []:
            if targets is None:
                untargeted.append(call)
                calls.append(call)
                continue
            mine = [t for t in targets if t in self.entity_ids]
            if mine:
                called.update(mine)
                calls.append(f"{call} {', '.join(mine)}")
        self._calls = None
        return Touched(changed, calls, frozenset(called), untargeted)

    @callback
    def _on_call(self, event: Event[dict[str, Any]]) -> None:
        if self._calls is None or event.data["domain"] not in self.domains:
            return
        call = f"{event.data['domain']}.{event.data['service']}"
        data = event.data.get("service_data") or {}
        targets = data.get(ATTR_ENTITY_ID)
        if targets in (None, "all", ["all"]):
            # No entity by id: all of them, or an area, device or label.
            if targets is not None or any(key in data for key in _OTHER_TARGETS):
                self._calls.append((f"{call} {data}", None))
            return
        self._calls.append((call, [targets] if isinstance(targets, str) else targets))


def _change(
    before: tuple[str, dict[str, Any]], after: tuple[str, dict[str, Any]]
) -> str:
    parts = [] if before[0] == after[0] else [f"{before[0]} -> {after[0]}"]
    parts.extend(
        f"{key} {before[1].get(key)!r} -> {after[1].get(key)!r}"
        for key in sorted(set(before[1]) | set(after[1]))
        if before[1].get(key) != after[1].get(key)
    )
    return ", ".join(parts)


def judge(touched: Touched, intended: str | None, met: bool, exchange: Any) -> str:
    """Return the outcome of a sentence.

    `intended`: the entity the command means to change (None: none, as for
    a question or a sentence that is no command); `met`: whether what the
    command must leave holds. Wrong: anything other than the intended entity
    (and what changes along with it) was touched, or the intended one was
    touched and is not as meant. Declined: the bench said no and nothing
    happened. `exchange` has `declined` (an Exchange, or the text-level one).
    """
    allowed = (
        frozenset()
        if intended is None
        else {intended} | COUPLED.get(intended, frozenset())
    )
    if touched.untargeted or touched.entities - allowed:
        return WRONG
    if touched.entities and not met:
        return WRONG
    if met:
        return RIGHT
    if exchange.declined:
        return DECLINED
    return FAILED


@dataclass
class TextExchange(_Questions):
    """A sentence typed to an agent and the answers to its questions."""

    answers: list[str] = field(default_factory=list)
    # Whether the agent's last answer says it failed (understood nothing,
    # found no such thing, could not do it).
    refused: bool = False

    @property
    def answer(self) -> str:
        """Return the agent's last answer."""
        return self.answers[-1]


async def async_converse_text(
    hass: HomeAssistant, text: str, agent_id: str, intended: Meaning | None
) -> TextExchange:
    """Say a sentence to an agent as text; answer its questions like the bench."""
    exchange = TextExchange()
    conversation_id: str | None = None
    while True:
        result = await conversation.async_converse(
            hass, text, conversation_id, Context(), language="en", agent_id=agent_id
        )
        await hass.async_block_till_done()
        speech = result.response.speech.get("plain", {}).get("speech", "")
        exchange.answers.append(speech)
        exchange.refused = (
            result.response.response_type == intent.IntentResponseType.ERROR
        )
        if not result.continue_conversation or len(exchange.questions) >= MAX_QUESTIONS:
            return exchange
        text = await async_reply(hass, speech, intended)
        exchange.questions.append(speech)
        exchange.replies.append(text)
        conversation_id = result.conversation_id
