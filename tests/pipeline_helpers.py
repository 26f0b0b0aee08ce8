"""Run speech through a real Assist pipeline and collect what happened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from homeassistant.components import stt, tts
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    async_pipeline_from_audio_stream,
)
from homeassistant.components.assist_pipeline.pipeline import (
    PipelineInput,
    PipelineRun,
    PipelineStage,
    async_get_pipeline,
)
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.helpers import chat_session

from custom_components.local_voice.command_log import EVENT_COMMAND
from scripts.speech import Speech, silence

# Lines for the end of the pytest run (printed by tests/conftest.py).
SUMMARY: list[str] = []


def english_metadata() -> stt.SpeechMetadata:
    """Return the metadata of 16 kHz English speech."""
    return dataclasses.replace(METADATA, language="en")


METADATA = stt.SpeechMetadata(
    language="",
    format=stt.AudioFormats.WAV,
    codec=stt.AudioCodecs.PCM,
    bit_rate=stt.AudioBitRates.BITRATE_16,
    sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
    channel=stt.AudioChannels.CHANNEL_MONO,
)


@dataclass
class Run:
    """The events of one pipeline run."""

    events: list[PipelineEvent] = field(default_factory=list)

    def first(self, kind: PipelineEventType) -> dict[str, Any]:
        """Return the data of the first event of a kind."""
        for event in self.events:
            if event.type == kind:
                return event.data or {}
        raise AssertionError(
            f"no {kind} event in {[(e.type, e.data) for e in self.events]}"
        )

    @property
    def transcript(self) -> str:
        """Return what speech-to-text heard."""
        return str(self.first(PipelineEventType.STT_END)["stt_output"]["text"])

    @property
    def answer(self) -> str:
        """Return what the assistant said."""
        response = self.first(PipelineEventType.INTENT_END)["intent_output"]["response"]
        # Some intents answer with nothing to say ("never mind").
        return str(response["speech"].get("plain", {}).get("speech", ""))

    @property
    def conversation_id(self) -> str | None:
        """Return the conversation the agent answered in."""
        output = self.first(PipelineEventType.INTENT_END)["intent_output"]
        return output.get("conversation_id")

    @property
    def asks(self) -> bool:
        """Return whether the agent waits for an answer (its reply is a question)."""
        if self.errors:
            return False
        output = self.first(PipelineEventType.INTENT_END)["intent_output"]
        return bool(output.get("continue_conversation"))

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Return the error events."""
        return [e.data or {} for e in self.events if e.type == PipelineEventType.ERROR]

    async def async_reply_audio(self, hass: HomeAssistant) -> tuple[str, bytes]:
        """Fetch the spoken reply the way a satellite streams it."""
        output = self.first(PipelineEventType.TTS_END)["tts_output"]
        stream = tts.async_get_stream(hass, output["token"])
        assert stream is not None, output
        audio = b"".join([chunk async for chunk in stream.async_stream_result()])
        return stream.extension, audio


async def _paced(speech: Speech, tail: float, real_time: bool) -> AsyncIterator[bytes]:
    """Yield 10 ms chunks, at the pace of a microphone when asked.

    Like a microphone that is opened before one speaks, the audio starts with
    half a second of silence.
    """
    for chunk in (silence(0.5) + speech).chunks(size=320, tail_silence=tail):
        if real_time:
            await asyncio.sleep(0.01)
        yield chunk


async def async_run_speech(
    hass: HomeAssistant,
    speech: Speech,
    *,
    pipeline_id: str | None = None,
    wake_word: bool = False,
    tail: float = 1.5,
    real_time: bool | None = None,
    conversation_id: str | None = None,
) -> Run:
    """Send speech through the pipeline: STT (or wake word) to TTS.

    The audio is paced like a microphone with the wake word stage, or when
    `real_time` says so; otherwise it is sent as fast as it is taken.
    `conversation_id` continues a conversation (the answer to a question).
    """
    run = Run()
    await async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=run.events.append,
        stt_metadata=METADATA,
        stt_stream=_paced(
            speech, tail, real_time=wake_word if real_time is None else real_time
        ),
        pipeline_id=pipeline_id,
        start_stage=PipelineStage.WAKE_WORD if wake_word else PipelineStage.STT,
        end_stage=PipelineStage.TTS,
        tts_audio_output="wav",
        conversation_id=conversation_id,
    )
    return run


async def async_run_text(
    hass: HomeAssistant,
    text: str,
    *,
    pipeline_id: str | None = None,
    conversation_id: str | None = None,
) -> Run:
    """Send text through the pipeline, from the agent to TTS (as typed in Assist)."""
    run = Run()
    with chat_session.async_get_chat_session(hass, conversation_id) as session:
        await PipelineInput(
            session=session,
            intent_input=text,
            run=PipelineRun(
                hass,
                context=Context(),
                pipeline=async_get_pipeline(hass, pipeline_id=pipeline_id),
                start_stage=PipelineStage.INTENT,
                end_stage=PipelineStage.TTS,
                event_callback=run.events.append,
                tts_audio_output="wav",
            ),
        ).execute(validate=True)
    return run


class CommandEvents:
    """The `local_voice_command` events fired, in order."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Listen from now on."""
        self.hass = hass
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        hass.bus.async_listen(EVENT_COMMAND, self._on_command)

    @callback
    def _on_command(self, event: Event[dict[str, Any]]) -> None:
        self.events.append(event.data)
        self._arrived.set()

    async def number(self, count: int) -> dict[str, Any]:
        """Wait for the event of command number `count`; return its data."""
        async with asyncio.timeout(10):
            while len(self.events) < count:
                self._arrived.clear()
                await self._arrived.wait()
        await self.hass.async_block_till_done()
        assert len(self.events) == count, self.events
        return self.events[-1]
