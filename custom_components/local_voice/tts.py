"""Text-to-speech entities: one per provider, one per assistant."""

from __future__ import annotations

from collections.abc import AsyncGenerator
import io
from typing import Any
import wave

from homeassistant.components import tts
from homeassistant.core import callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from wyoming.audio import AudioChunk

from .assistant import Assistant
from .chain import TtsChain
from .command_log import FIRST_AUDIO, SYNTHESIS, CommandLog
from .const import DOMAIN
from .entity import LocalVoiceEntity, speech_platform
from .language import base_language
from .models import LocalVoiceData
from .retention import Retention

ATTR_SPEAKER = "speaker"
PARALLEL_UPDATES = 0


def wav_header(chunk: AudioChunk) -> bytes:
    """Return a WAV header for streamed audio of unknown length."""
    with io.BytesIO() as buffer:
        with wave.open(buffer, "wb") as writer:
            writer.setframerate(chunk.rate)
            writer.setsampwidth(chunk.width)
            writer.setnchannels(chunk.channels)
        return buffer.getvalue()


def wav_file(chunks: list[AudioChunk]) -> bytes:
    """Return a complete WAV file of audio chunks."""
    first = chunks[0]
    with io.BytesIO() as buffer:
        with wave.open(buffer, "wb") as writer:
            writer.setframerate(first.rate)
            writer.setsampwidth(first.width)
            writer.setnchannels(first.channels)
            for chunk in chunks:
                writer.writeframes(chunk.audio)
        return buffer.getvalue()


class LocalVoiceTtsEntity(LocalVoiceEntity[TtsChain], tts.TextToSpeechEntity):
    """Synthesize speech with a chain of Wyoming servers."""

    _attr_translation_key = "text_to_speech"

    _attr_supported_options = [tts.ATTR_VOICE, ATTR_SPEAKER]

    @property
    def supported_languages(self) -> list[str]:
        """Return the languages of the server's voices."""
        return self.chain.languages

    @property
    def default_language(self) -> str:
        """Prefer Home Assistant's own language when a voice speaks it."""
        languages = self.supported_languages
        own = self.hass.config.language
        for language in languages:
            if language == own or base_language(language) == own:
                return language
        return languages[0] if languages else own

    @callback
    def async_get_supported_voices(self, language: str) -> list[tts.Voice] | None:
        """Return the voices for a language, leaving out those found missing."""
        provider = self.chain.provider
        if provider is None:
            return None
        voices = provider.usable_voices(language)
        return [tts.Voice(voice_id=v.name, name=v.description) for v in voices] or None

    def async_supports_streaming_input(self) -> bool:
        """Stream text in when the server says it can."""
        return self.chain.streaming

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> tts.TtsAudioType:
        """Return the whole reply as one WAV file."""
        self._note(SYNTHESIS)
        chunks = [
            chunk
            async for chunk in self.chain.async_synthesize(
                message, options.get(tts.ATTR_VOICE), options.get(ATTR_SPEAKER)
            )
        ]
        if not chunks:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="tts_no_audio"
            )
        self._note(FIRST_AUDIO)
        self._spoken()
        return "wav", wav_file(chunks)

    async def async_stream_tts_audio(
        self, request: tts.TTSAudioRequest
    ) -> tts.TTSAudioResponse:
        """Stream text in and WAV out, sentence by sentence."""
        self._note(SYNTHESIS)

        async def data() -> AsyncGenerator[bytes]:
            header_sent = False
            async for chunk in self.chain.async_synthesize(
                request.message_gen,
                request.options.get(tts.ATTR_VOICE),
                request.options.get(ATTR_SPEAKER),
            ):
                if not header_sent:
                    header_sent = True
                    self._note(FIRST_AUDIO)
                    yield wav_header(chunk)
                yield chunk.audio
            self._spoken()

        return tts.TTSAudioResponse("wav", data())

    @callback
    def _note(self, kind: str) -> None:
        """Note a moment of a reply for an assistant's command log.

        A server's own entity speaks for no assistant: nothing to note.
        """

    @callback
    def _spoken(self) -> None:
        """A reply is cached: an assistant's entity lets its retention know."""


class AssistantTtsEntity(LocalVoiceTtsEntity):
    """An assistant's voice: its replies are noted and leave the cache in time."""

    def __init__(
        self,
        chain: TtsChain,
        unique_id: str,
        device: DeviceInfo,
        command_log: CommandLog,
        retention: Retention,
    ) -> None:
        """Keep the entry's command log and retention."""
        super().__init__(chain, unique_id, device)
        self._command_log = command_log
        self._retention = retention

    @classmethod
    def for_assistant(
        cls,
        data: LocalVoiceData,
        assistant: Assistant,
        chain: TtsChain,
        unique_id: str,
        device: DeviceInfo,
    ) -> AssistantTtsEntity:
        """Make the assistant's voice with the entry's command log and retention."""
        return cls(chain, unique_id, device, data.command_log, data.retention)

    @callback
    def _note(self, kind: str) -> None:
        self._command_log.note(kind)

    @callback
    def _spoken(self) -> None:
        self._retention.async_spoken(self.entity_id)


async_setup_entry = speech_platform(
    "tts",
    TtsChain,
    lambda assistant: assistant.tts,
    LocalVoiceTtsEntity,
    AssistantTtsEntity.for_assistant,
)
