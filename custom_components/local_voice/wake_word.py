"""Wake word entities: one per provider, one per assistant.

An assistant's entity hands speech-to-text the audio from before each
detection and records the wake for its second check (wake_check.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from functools import partial
import time

from homeassistant.components import wake_word
from homeassistant.helpers import chat_session
from homeassistant.helpers.device_registry import DeviceInfo

from .assistant import Assistant
from .chain import Detected, WakeChain
from .entity import LocalVoiceEntity, speech_platform
from .models import LocalVoiceData
from .wake_check import CHECK_SECONDS, KEEP_SECONDS, KeptAudio, Wake, pass_score

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
        """Stream audio until the server detects the wake word.

        Speech-to-text gets all that was taken after the detection: on a busy
        machine the answer comes late, and the command may have begun
        meanwhile.
        """
        kept = KeptAudio(stream)
        detected = await self.chain.async_detect(kept.stream(), wake_word_id)
        if detected is None:
            return None
        queued = kept.since(_detection_ms(detected, kept))
        return wake_word.DetectionResult(
            wake_word_id=detected.name,
            wake_word_phrase=detected.phrase,
            timestamp=detected.timestamp,
            queued_audio=queued or None,
        )


class AssistantWakeWordEntity(LocalVoiceWakeWordEntity):
    """An assistant's wake word: checked again, and nothing lost after it."""

    def __init__(
        self,
        assistant: Assistant,
        chain: WakeChain,
        unique_id: str,
        device: DeviceInfo,
    ) -> None:
        """Keep the assistant: its settings, its record of wakes."""
        super().__init__(chain, unique_id, device)
        self.assistant = assistant

    @classmethod
    def for_assistant(
        cls,
        data: LocalVoiceData,
        assistant: Assistant,
        chain: WakeChain,
        unique_id: str,
        device: DeviceInfo,
    ) -> AssistantWakeWordEntity:
        """Make the assistant's entity."""
        return cls(assistant, chain, unique_id, device)

    async def _async_process_audio_stream(
        self, stream: AsyncIterable[tuple[bytes, int]], wake_word_id: str | None
    ) -> wake_word.DetectionResult | None:
        """Listen; on a detection record it and hand on the audio before it."""
        kept = KeptAudio(stream)
        detected = await self.chain.async_detect(kept.stream(), wake_word_id)
        if detected is None:
            return None
        at_ms = _detection_ms(detected, kept)
        # The command began before the detector fired: speech-to-text gets
        # it from its start. Otherwise all that was taken after the
        # detection: on a busy machine the answer comes late, and the
        # command may have begun meanwhile.
        onset = kept.onset(at_ms)
        queued = kept.since(at_ms if onset is None else onset)
        settings = self.assistant.settings
        wake = Wake(
            phrase=detected.phrase,
            at=time.time(),
            detector_ms=detected.timestamp,
            strictness=settings.wake_check,
            lead_seconds=round((kept.last_ms - onset) / 1000, 2)
            if onset is not None
            else 0.0,
            # Up to the last audio taken; the speech-to-text, which gets the
            # queued audio first, adds what follows and starts the check.
            before=kept.between(at_ms - CHECK_SECONDS * 1000, kept.last_ms + 1),
            queued_bytes=sum(len(chunk) for chunk, _ in queued),
        )
        if self.assistant.stt.members and wake.before:
            wake.need = pass_score(settings.wake_check)
        if wake.need is not None and (partners := self.chain.partners(detected)):
            # A second model of the same phrase: the first one offered.
            wake.confirm = partial(self.chain.async_confirm, *partners[0])
        session = chat_session.current_session.get()
        self.assistant.wakes.start(
            session.conversation_id if session is not None else None, wake
        )
        return wake_word.DetectionResult(
            wake_word_id=detected.name,
            wake_word_phrase=detected.phrase,
            timestamp=detected.timestamp,
            queued_audio=queued or None,
        )


def _detection_ms(detected: Detected, kept: KeptAudio) -> float:
    """Return where in the stream the detector heard the word end.

    The detector's own timestamp when it falls within the kept audio (a
    detector that lags behind the stream); else the latest audio taken.
    """
    stamp = detected.timestamp
    if stamp is not None and (
        kept.last_ms - KEEP_SECONDS * 1000 < stamp <= kept.last_ms + 100
    ):
        return float(stamp)
    return float(kept.last_ms)


async_setup_entry = speech_platform(
    "wake_word",
    WakeChain,
    lambda assistant: assistant.wake,
    LocalVoiceWakeWordEntity,
    AssistantWakeWordEntity.for_assistant,
)
