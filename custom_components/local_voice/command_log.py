"""After each command: the `local_voice_command` event and the assistant's figures.

When a run of an assistant's pipeline ends (ha_adapter.RunWatch hands over
its events, with their times), the log adds what the assistant's own
entities noted on the way (when the speech ended, when the first audio of
the answer came) and fires `local_voice_command`: which assistant, which
device or satellite, whether it worked, how long each step took from the end
of speech, and the agent's outcome. The words said and answered are in it
only when the assistant's `command_text` setting allows, because the
recorder keeps events. Then the run is handed on (to the retention, which
removes it from the debug history unless the assistant keeps runs).

The marks are matched to their run by the chat session Home Assistant opens
for every run (`chat_session.current_session`, a public helper): the STT
entity runs inside it, and so does the TTS, whose synthesis starts as a task
of the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
import time
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.assist_pipeline import PipelineEventType
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import chat_session
from homeassistant.helpers.event import async_call_later

from .const import DOMAIN
from .ha_adapter import EndedRun
from .retention import Kept

if TYPE_CHECKING:
    from .understanding import Outcome

EVENT_COMMAND: Final = f"{DOMAIN}_command"

SPEECH_END: Final = "speech_end"
# How the speech-to-text chain got its transcript: "hops:added ms".
STT_CHAIN: Final = "stt_chain"
SYNTHESIS: Final = "synthesis"
FIRST_AUDIO: Final = "first_audio"
# What the assistant's agent did (understanding.py).
ASKED: Final = "asked"
ANSWERED: Final = "answered"
REPAIRED: Final = "repaired"

# How long after a run's end its answer's first audio may still come: the
# event waits for it this long at most, when a synthesis was started.
AUDIO_GRACE = 2.0
MARKS_KEPT = 200


@dataclass(frozen=True, slots=True)
class Mark:
    """Something an entity of ours noted during a run (time.time())."""

    conversation_id: str
    kind: str
    at: float
    # How the speech ended, how a question was answered, which repair.
    detail: str | None = None


def _ms(start: float | None, end: float | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000)


class CommandLog:
    """Turn each ended run of an assistant's pipeline into one event."""

    def __init__(
        self,
        hass: HomeAssistant,
        kept: Callable[[], list[Kept]],
        reported: Callable[[EndedRun], None],
    ) -> None:
        """Follow the assistants' pipelines that `kept` returns.

        `reported` gets each run once its event is out (or it was no command).
        """
        self.hass = hass
        self._kept = kept
        self._reported = reported
        self._marks: deque[Mark] = deque(maxlen=MARKS_KEPT)
        # Runs whose answer's first audio is still to come, with their timers.
        self._waiting: dict[str, tuple[EndedRun, CALLBACK_TYPE]] = {}

    @callback
    def note(
        self, kind: str, at: float | None = None, detail: str | None = None
    ) -> None:
        """Note a moment of the run this code runs in, if it runs in one."""
        session = chat_session.current_session.get()
        if session is None:
            return  # not part of a pipeline run (an action, a test sentence)
        self._marks.append(
            Mark(
                session.conversation_id, kind, time.time() if at is None else at, detail
            )
        )
        if kind == FIRST_AUDIO:
            for run, _timer in list(self._waiting.values()):
                if _conversation_id(run) == session.conversation_id:
                    self.async_ended(run)

    @callback
    def note_outcome(self, outcome: Outcome) -> None:
        """Note what the agent did with the run's sentence."""
        if outcome.asked:
            self.note(ASKED)
        if outcome.answer is not None:
            self.note(ANSWERED, detail=outcome.answer)
        if outcome.repaired is not None and not outcome.asked:
            self.note(REPAIRED, detail=outcome.repaired)

    @callback
    def async_ended(self, run: EndedRun) -> None:
        """Report a run that ended, or wait a little for its answer's first audio."""
        if (waiting := self._waiting.pop(run.run_id, None)) is not None:
            waiting[1]()
        outcome = self._outcome(run, waited=False)
        if outcome is not None:
            self._report(run, outcome)
            return

        @callback
        def waited(_now: object) -> None:
            self._waiting.pop(run.run_id, None)
            self._report(run, self._outcome(run, waited=True) or {})

        self._waiting[run.run_id] = (
            run,
            async_call_later(self.hass, AUDIO_GRACE, waited),
        )

    def _report(self, run: EndedRun, outcome: dict[str, Any]) -> None:
        if outcome:
            self.hass.bus.async_fire(EVENT_COMMAND, outcome)
        self._reported(run)

    @callback
    def async_stop(self) -> None:
        """Report at once what still waits for its audio: the entry unloads."""
        for run, cancel in list(self._waiting.values()):
            cancel()
            del self._waiting[run.run_id]
            self._report(run, self._outcome(run, waited=True) or {})

    def _outcome(self, run: EndedRun, *, waited: bool) -> dict[str, Any] | None:
        """Return the event's data; {} for no command; None: the audio may come."""
        kept = next((k for k in self._kept() if k.pipeline_id == run.pipeline_id), None)
        if kept is None or not (
            run.first(PipelineEventType.STT_START)
            or run.first(PipelineEventType.INTENT_START)
        ):
            return {}  # no wake word came: nothing was said to the assistant

        def data(kind: PipelineEventType) -> Mapping[str, Any]:
            event = run.first(kind)
            return event.data if event is not None else {}

        def at(kind: PipelineEventType) -> float | None:
            event = run.first(kind)
            return event.at if event is not None else None

        started = at(PipelineEventType.RUN_START)
        ended = at(PipelineEventType.RUN_END)
        if started is None or ended is None:
            return {}  # a run that never started
        conversation_id = _conversation_id(run)
        marks = [m for m in self._marks if m.conversation_id == conversation_id]
        speech = [m for m in marks if m.kind == SPEECH_END and started <= m.at <= ended]
        synthesized = any(
            m.kind == SYNTHESIS and started <= m.at <= ended for m in marks
        )
        audio = [
            m.at
            for m in marks
            if m.kind == FIRST_AUDIO and started <= m.at <= ended + AUDIO_GRACE
        ]
        if synthesized and not audio and not waited:
            return None
        speech_end = speech[-1].at if speech else None
        chain = [
            m.detail for m in marks if m.kind == STT_CHAIN and started <= m.at <= ended
        ]
        hops, added_ms = _chain_figures(chain[-1] if chain else None)
        during = [m for m in marks if started <= m.at <= ended]
        first_audio = min(audio) if audio else None
        if first_audio is None and run.first(PipelineEventType.TTS_END):
            # Spoken from Home Assistant's cache: ready when the run named it.
            first_audio = at(PipelineEventType.TTS_END)

        error = data(PipelineEventType.ERROR)
        intent = data(PipelineEventType.INTENT_START)
        output = data(PipelineEventType.INTENT_END).get("intent_output") or {}
        response = output.get("response") or {}
        response_type = response.get("response_type")
        unfinished = any(
            run.first(start) and not run.first(end)
            for start, end in (
                (PipelineEventType.STT_START, PipelineEventType.STT_END),
                (PipelineEventType.INTENT_START, PipelineEventType.INTENT_END),
                (PipelineEventType.TTS_START, PipelineEventType.TTS_END),
            )
        )
        error_code = error.get("code") or (
            (response.get("data") or {}).get("code")
            if response_type == "error"
            else None
        )
        outcome: dict[str, Any] = {
            "assistant": kept.pipeline_name,
            "assistant_id": kept.assistant_id,
            "pipeline_id": kept.pipeline_id,
            "device_id": intent.get("device_id"),
            "satellite_id": intent.get("satellite_id"),
            "language": data(PipelineEventType.RUN_START).get("language"),
            "success": not error and not unfinished and response_type != "error",
            "error_code": error_code,
            "ended": speech[-1].detail if speech else None,
            "asked": any(m.kind == ASKED for m in during),
            "confirmation": next(
                (m.detail for m in during if m.kind == ANSWERED), None
            ),
            "repaired": next((m.detail for m in during if m.kind == REPAIRED), None),
            "stt_hops": hops,
            "stt_added_ms": added_ms,
            "speech_to_transcript_ms": _ms(speech_end, at(PipelineEventType.STT_END)),
            "speech_to_intent_ms": _ms(speech_end, at(PipelineEventType.INTENT_END)),
            "speech_to_first_audio_ms": _ms(speech_end, first_audio),
            "intent_ms": _ms(
                at(PipelineEventType.INTENT_START), at(PipelineEventType.INTENT_END)
            ),
            "response_type": response_type,
            "processed_locally": data(PipelineEventType.INTENT_END).get(
                "processed_locally"
            ),
            "targets": [
                target["id"]
                for target in (response.get("data") or {}).get("success") or []
                if isinstance(target, dict) and target.get("type") == "entity"
            ],
        }
        if kept.command_text:
            outcome["transcript"] = (
                data(PipelineEventType.STT_END).get("stt_output") or {}
            ).get("text") or intent.get("intent_input")
            outcome["answer"] = ((response.get("speech") or {}).get("plain") or {}).get(
                "speech"
            )
        return outcome


def chain_detail(hops: int, added: float) -> str:
    """Return a STT_CHAIN mark's detail: servers asked after the first, ms added."""
    return f"{hops}:{round(added * 1000)}"


def _chain_figures(detail: str | None) -> tuple[int | None, int | None]:
    if not detail:
        return None, None
    hops, _, added = detail.partition(":")
    return int(hops), int(added)


def _conversation_id(run: EndedRun) -> str | None:
    start = run.first(PipelineEventType.RUN_START)
    return start.data.get("conversation_id") if start is not None else None
