"""Wake word entities: one per provider, one per assistant."""

from __future__ import annotations

from collections.abc import AsyncIterable

from homeassistant.components import wake_word

from .chain import WakeChain
from .entity import LocalVoiceEntity, speech_platform

PARALLEL_UPDATES = 0


class LocalVoiceWakeWordEntity(
    LocalVoiceEntity[WakeChain], wake_word.WakeWordDetectionEntity
):
    """Listen for a wake word with a chain of Wyoming servers."""

    _attr_translation_key = "wake_word"

    async def get_supported_wake_words(self) -> list[wake_word.WakeWord]:
        """Return the server's models, version suffixes removed."""
        provider = self.chain.provider
        if provider is None:
            return []
        return [
            wake_word.WakeWord(id=w.name, name=w.phrase, phrase=w.phrase)
            for w in provider.offer.wake_words
        ]

    async def _async_process_audio_stream(
        self, stream: AsyncIterable[tuple[bytes, int]], wake_word_id: str | None
    ) -> wake_word.DetectionResult | None:
        """Stream audio until the server detects the wake word."""
        detected = await self.chain.async_detect(stream, wake_word_id)
        if detected is None:
            return None
        return wake_word.DetectionResult(
            wake_word_id=detected.name,
            wake_word_phrase=detected.phrase,
            timestamp=detected.timestamp,
            queued_audio=detected.queued or None,
        )


async_setup_entry = speech_platform(
    "wake_word", WakeChain, lambda assistant: assistant.wake, LocalVoiceWakeWordEntity
)
