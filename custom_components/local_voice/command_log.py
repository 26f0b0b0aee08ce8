"""After each command: the `local_voice_command` event and the assistant's figures.

A run of an assistant's pipeline leaves its events (with timestamps) in Home
Assistant's debug history until the retention removes it. Once a run has
ended, the log reads them, adds what the assistant's own entities noted on
the way (when the speech ended, when the first audio of the answer came) and
fires `local_voice_command`: which assistant, which device or satellite,
whether it worked, how long each step took from the end of speech, and the
agent's outcome. The words said and answered are in it only when the
assistant's `command_text` setting allows, because the recorder keeps events.

The marks are matched to their run by the chat session Home Assistant opens
for every run: the STT entity runs inside it, and so does the TTS, whose
synthesis starts as a task of the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
import time
from typing import Any, Final

from homeassistant.components.assist_pipeline.pipeline import PipelineEventType
from homeassistant.components.assist_pipeline.runtime import (
    KEY_ASSIST_PIPELINE,
    PipelineRunDebug,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import chat_session
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .retention import Kept

EVENT_COMMAND: Final = f"{DOMAIN}_command"
DATA_COMMAND_LOG: HassKey[CommandLog] = HassKey(f"{DOMAIN}_command_log")

SPEECH_END: Final = "speech_end"
SYNTHESIS: Final = "synthesis"
FIRST_AUDIO: Final = "first_audio"

# How long after a run's end its answer's first audio may still come: the
# event waits for it this long at most, when a synthesis was started.
AUDIO_GRACE = 2.0
MARKS_KEPT = 200
REPORTED_KEPT = 200


@dataclass(frozen=True, slots=True)
class Mark:
    """Something an entity of ours noted during a run (time.time())."""

    conversation_id: str
    kind: str
    at: float
    ending: str | None = None


def _at(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def _ms(start: float | None, end: float | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000)


class CommandLog:
    """Turn each ended run of an assistant's pipeline into one event."""

    def __init__(self, hass: HomeAssistant, kept: Callable[[], list[Kept]]) -> None:
        """Follow the assistants' pipelines that `kept` returns."""
        self.hass = hass
        self._kept = kept
        self._marks: deque[Mark] = deque(maxlen=MARKS_KEPT)
        # Run ids already reported (or no command), oldest first.
        self._reported: dict[str, None] = {}

    @callback
    def note(
        self, kind: str, at: float | None = None, ending: str | None = None
    ) -> None:
        """Note a moment of the run this code runs in, if it runs in one."""
        session = chat_session.current_session.get()
        if session is None:
            return  # not part of a pipeline run (an action, a test sentence)
        self._marks.append(
            Mark(
                session.conversation_id, kind, time.time() if at is None else at, ending
            )
        )

    @callback
    def async_collect(self) -> set[str]:
        """Report the runs that ended; return the ids of those still waiting."""
        pipeline_data = self.hass.data.get(KEY_ASSIST_PIPELINE)
        waiting: set[str] = set()
        if pipeline_data is None:
            return waiting
        now = time.time()
        for kept in self._kept():
            runs = pipeline_data.pipeline_debug.get(kept.pipeline_id)
            for run_id, run in list((runs or {}).items()):
                if run_id in self._reported:
                    continue
                outcome = self._outcome(kept, run, now)
                if outcome is None:
                    if any(e.type == PipelineEventType.RUN_END for e in run.events):
                        waiting.add(run_id)
                    continue
                self._reported[run_id] = None
                if len(self._reported) > REPORTED_KEPT:
                    del self._reported[next(iter(self._reported))]
                if outcome:
                    self.hass.bus.async_fire(EVENT_COMMAND, outcome)
        return waiting

    def _outcome(
        self, kept: Kept, run: PipelineRunDebug, now: float
    ) -> dict[str, Any] | None:
        """Return the event's data; {} for a run that was no command; None: not yet."""
        first: dict[str, Any] = {}
        for event in run.events:
            first.setdefault(event.type, event)
        if PipelineEventType.RUN_END not in first:
            return None
        if not {PipelineEventType.STT_START, PipelineEventType.INTENT_START} & set(
            first
        ):
            return {}  # no wake word came: nothing was said to the assistant

        def data(kind: PipelineEventType) -> dict[str, Any]:
            event = first.get(kind)
            return (event.data or {}) if event is not None else {}

        def at(kind: PipelineEventType) -> float | None:
            event = first.get(kind)
            return _at(event.timestamp) if event is not None else None

        started = at(PipelineEventType.RUN_START)
        ended = at(PipelineEventType.RUN_END)
        if started is None or ended is None:
            return {}  # a run that never started
        conversation_id = data(PipelineEventType.RUN_START).get("conversation_id")
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
        if synthesized and not audio and now - ended < AUDIO_GRACE:
            return None
        speech_end = speech[-1].at if speech else None
        first_audio = min(audio) if audio else None
        if first_audio is None and PipelineEventType.TTS_END in first:
            # Spoken from Home Assistant's cache: ready when the run named it.
            first_audio = at(PipelineEventType.TTS_END)

        error = data(PipelineEventType.ERROR)
        intent = data(PipelineEventType.INTENT_START)
        output = data(PipelineEventType.INTENT_END).get("intent_output") or {}
        response = output.get("response") or {}
        response_type = response.get("response_type")
        unfinished = any(
            start in first and end not in first
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
            "ended": speech[-1].ending if speech else None,
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


@callback
def note_command(
    hass: HomeAssistant, kind: str, at: float | None = None, ending: str | None = None
) -> None:
    """Note a moment of the current run for the command log, if there is one."""
    if (log := hass.data.get(DATA_COMMAND_LOG)) is not None:
        log.note(kind, at, ending)
