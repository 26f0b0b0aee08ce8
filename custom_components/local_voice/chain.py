"""Speech services over an ordered list of providers.

A provider's own entities use a chain of one; an assistant's entities use the
providers chosen for it, in the order chosen. Requests go to the first member
of the chain (its primary); every outcome is folded into that provider's
health.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from dataclasses import dataclass
import logging
import time
from typing import Protocol

from homeassistant.exceptions import HomeAssistantError
from wyoming.audio import AudioChunk, AudioFormat

from .client import (
    ServerError,
    WyomingError,
    async_detect,
    async_synthesize,
    async_transcribe,
)
from .const import DOMAIN
from .language import base_language
from .provider import Provider, WakeWord

_LOGGER = logging.getLogger(__name__)

# Home Assistant hands wake word engines 16 kHz 16-bit mono audio.
WAKE_AUDIO = AudioFormat(rate=16000, width=2, channels=1)

# Whisper now and then drops the first word of audio that starts right on
# speech, as the audio after a wake word does ("turn on the kitchen light"
# heard as "on the kitchen light"); a short lead-in of silence prevents it.
LEAD_IN_SECONDS = 0.3


async def _with_lead_in(
    stream: AsyncIterable[bytes], audio_format: AudioFormat
) -> AsyncGenerator[bytes]:
    frames = int(audio_format.rate * LEAD_IN_SECONDS)
    yield bytes(frames * audio_format.width * audio_format.channels)
    async for chunk in stream:
        yield chunk


class ProviderHandle(Protocol):
    """A provider and the place its request outcomes are reported to."""

    @property
    def provider(self) -> Provider:
        """Return the provider."""

    def report_request(self, started: float, error: WyomingError | None = None) -> None:
        """Record the outcome of a request."""


@dataclass(slots=True)
class UnmanagedProvider:
    """A provider without health tracking, as used while a flow checks it."""

    provider: Provider

    def report_request(self, started: float, error: WyomingError | None = None) -> None:
        """Nothing tracks this provider's health."""


@dataclass(frozen=True, slots=True)
class Detected:
    """A wake word heard, with the audio read past it."""

    name: str
    phrase: str
    timestamp: int | None
    queued: list[tuple[bytes, int]]


class Chain:
    """An ordered list of providers for one kind of service."""

    def __init__(self, members: Sequence[ProviderHandle]) -> None:
        """Keep the providers in order."""
        self.members = members

    @property
    def primary(self) -> ProviderHandle | None:
        """Return the provider requests go to."""
        return self.members[0] if self.members else None

    @property
    def provider(self) -> Provider | None:
        """Return the primary provider's state."""
        primary = self.primary
        return primary.provider if primary else None

    @property
    def available(self) -> bool:
        """Return True when the primary provider is up."""
        provider = self.provider
        return provider is not None and provider.available

    def _require(self) -> ProviderHandle:
        primary = self.primary
        if primary is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="no_provider"
            )
        return primary


class SttChain(Chain):
    """Speech-to-text over a chain of providers."""

    @property
    def languages(self) -> list[str]:
        """Return the languages of the primary provider's model."""
        provider = self.provider
        return provider.offer.stt_languages if provider else []

    async def async_transcribe(
        self, stream: AsyncIterable[bytes], audio_format: AudioFormat, language: str
    ) -> str | None:
        """Return the transcript, or None when it failed or was empty."""
        coordinator = self._require()
        provider = coordinator.provider
        model = provider.offer.stt_model_for(language)
        started = time.monotonic()
        try:
            text = await async_transcribe(
                provider.host,
                provider.port,
                _with_lead_in(stream, audio_format),
                audio_format,
                language=base_language(language),
                model=model.name if model else None,
            )
        except WyomingError as err:
            _LOGGER.warning("Speech-to-text at %s failed: %s", provider.address, err)
            coordinator.report_request(started, err)
            return None
        coordinator.report_request(started)
        return text or None


class TtsChain(Chain):
    """Text-to-speech over a chain of providers."""

    @property
    def languages(self) -> list[str]:
        """Return the languages of the primary provider's voices."""
        provider = self.provider
        return provider.offer.tts_languages if provider else []

    @property
    def streaming(self) -> bool:
        """Return True when the primary provider takes text as it comes."""
        provider = self.provider
        return provider is not None and provider.offer.tts_streaming

    async def async_synthesize(
        self,
        text: str | AsyncIterable[str],
        voice: str | None,
        speaker: str | None = None,
        *,
        fallback: bool = True,
    ) -> AsyncGenerator[AudioChunk]:
        """Yield audio, falling back to the server's default voice when needed.

        A voice the server turns down is remembered as missing; for a plain
        text the request is repeated with the server's own default voice,
        unless `fallback` is off (when a voice itself is being checked).
        """
        coordinator = self._require()
        provider = coordinator.provider
        if fallback and voice in provider.missing_voices:
            voice = None
        started = time.monotonic()
        produced = False
        try:
            async for chunk in async_synthesize(
                provider.host,
                provider.port,
                text,
                voice=voice,
                speaker=speaker if voice else None,
            ):
                produced = True
                yield chunk
        except ServerError as err:
            if voice is None or produced or not fallback or not isinstance(text, str):
                if voice is not None and not produced:
                    provider.missing_voices.add(voice)
                coordinator.report_request(started, err)
                raise _tts_error(provider, err) from err
            _LOGGER.warning(
                "%s does not have voice %s (%s); using its default voice",
                provider.address,
                voice,
                err,
            )
            provider.missing_voices.add(voice)
            async for chunk in self.async_synthesize(text, None):
                yield chunk
            return
        except WyomingError as err:
            coordinator.report_request(started, err)
            raise _tts_error(provider, err) from err
        coordinator.report_request(started)


def _tts_error(provider: Provider, err: Exception) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="tts_failed",
        translation_placeholders={"address": provider.address, "error": str(err)},
    )


class WakeChain(Chain):
    """Wake word detection over a chain of providers."""

    def word(self, name: str) -> WakeWord | None:
        """Return the primary provider's wake word of this name."""
        provider = self.provider
        if provider is None:
            return None
        return next((w for w in provider.offer.wake_words if w.name == name), None)

    def _served_name(self, name: str) -> str:
        """Return the model name as the server spells it (e.g. alexa_v0.1)."""
        word = self.word(name)
        return word.model if word else name

    async def async_detect(
        self, stream: AsyncIterable[tuple[bytes, int]], wake_word_id: str | None
    ) -> Detected | None:
        """Listen until the wake word is heard or the audio ends."""
        coordinator = self._require()
        provider = coordinator.provider
        started = time.monotonic()
        try:
            detection, queued = await async_detect(
                provider.host,
                provider.port,
                stream,
                WAKE_AUDIO,
                names=[self._served_name(wake_word_id)] if wake_word_id else None,
            )
        except WyomingError as err:
            _LOGGER.warning(
                "Wake word detection at %s failed: %s", provider.address, err
            )
            coordinator.report_request(started, err)
            return None
        coordinator.report_request(started)
        if detection is None:
            return None
        name = detection.name or wake_word_id or ""
        word = self.word(name)
        return Detected(
            name=name,
            phrase=word.phrase if word else name,
            timestamp=detection.timestamp,
            queued=queued,
        )
