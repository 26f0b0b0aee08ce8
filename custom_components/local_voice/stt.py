"""Speech-to-text entities: one per provider, one per assistant."""

from __future__ import annotations

from collections.abc import AsyncIterable

from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from wyoming.audio import AudioFormat

from .chain import SttChain
from .coordinator import LocalVoiceConfigEntry
from .entity import LocalVoiceEntity, async_add_speech_entities
from .retention import note_used

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocalVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the STT entities of providers with a model and of assistants."""
    async_add_speech_entities(
        entry,
        async_add_entities,
        "stt",
        provider_chain=SttChain,
        assistant_chain=lambda assistant: assistant.stt,
        entity=LocalVoiceSttEntity,
    )


class LocalVoiceSttEntity(LocalVoiceEntity[SttChain], stt.SpeechToTextEntity):
    """Transcribe with a chain of Wyoming servers."""

    _attr_translation_key = "speech_to_text"

    @property
    def supported_languages(self) -> list[str]:
        """Return the languages the model really handles."""
        return self.chain.languages

    @property
    def supported_formats(self) -> list[stt.AudioFormats]:
        """Return the audio formats."""
        return [stt.AudioFormats.WAV]

    @property
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        """Return the audio codecs."""
        return [stt.AudioCodecs.PCM]

    @property
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        """Return the bit rates."""
        return [stt.AudioBitRates.BITRATE_16]

    @property
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        """Return the sample rates."""
        return [stt.AudioSampleRates.SAMPLERATE_16000]

    @property
    def supported_channels(self) -> list[stt.AudioChannels]:
        """Return the channels."""
        return [stt.AudioChannels.CHANNEL_MONO]

    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        """Stream the audio to the server and return its transcript."""
        note_used(self.hass)
        text = await self.chain.async_transcribe(
            stream,
            AudioFormat(
                rate=metadata.sample_rate.value,
                width=metadata.bit_rate.value // 8,
                channels=metadata.channel.value,
            ),
            metadata.language,
        )
        if text is None:
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        return stt.SpeechResult(text, stt.SpeechResultState.SUCCESS)
