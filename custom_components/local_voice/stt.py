"""Speech-to-text entities: one per provider, one per assistant."""

from __future__ import annotations

from collections.abc import AsyncIterable
import logging

from homeassistant.components import conversation, stt
from homeassistant.helpers.device_registry import DeviceInfo
from wyoming.audio import AudioFormat

from .assistant import Assistant
from .chain import SttChain, Vocabulary
from .command_log import SPEECH_END, CommandLog
from .early_end import ENDED_EARLY, EarlyEnd
from .entity import LocalVoiceEntity, speech_platform
from .models import LocalVoiceData
from .names import NameRepair

PARALLEL_UPDATES = 0

_LOGGER = logging.getLogger(__name__)


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
        audio_format = AudioFormat(
            rate=metadata.sample_rate.value,
            width=metadata.bit_rate.value // 8,
            channels=metadata.channel.value,
        )
        vocabulary = await self._async_vocabulary(metadata.language)
        text = await self._async_transcribe(
            stream, audio_format, metadata.language, vocabulary
        )
        if text is None:
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        return stt.SpeechResult(text, stt.SpeechResultState.SUCCESS)

    async def _async_transcribe(
        self,
        stream: AsyncIterable[bytes],
        audio_format: AudioFormat,
        language: str,
        vocabulary: Vocabulary,
    ) -> str | None:
        """Return the transcript to hand on: as heard for a provider's own."""
        return await self.chain.async_transcribe(
            stream, audio_format, language, vocabulary
        )

    async def _async_vocabulary(self, language: str) -> Vocabulary:
        """Return the words to steer the server with: none for a provider's own."""
        return Vocabulary()


class AssistantSttEntity(LocalVoiceSttEntity):
    """An assistant's speech-to-text: steered, repaired, and ended early."""

    def __init__(
        self,
        assistant: Assistant,
        chain: SttChain,
        unique_id: str,
        device: DeviceInfo,
        *,
        names: NameRepair,
        command_log: CommandLog,
    ) -> None:
        """Keep the assistant (settings, record of repairs) and the entry's services."""
        super().__init__(chain, unique_id, device)
        self.assistant = assistant
        self._names = names
        self._command_log = command_log

    @classmethod
    def for_assistant(
        cls,
        data: LocalVoiceData,
        assistant: Assistant,
        chain: SttChain,
        unique_id: str,
        device: DeviceInfo,
    ) -> AssistantSttEntity:
        """Make the assistant's entity with the entry's name repair and command log."""
        return cls(
            assistant,
            chain,
            unique_id,
            device,
            names=data.names,
            command_log=data.command_log,
        )

    async def _async_vocabulary(self, language: str) -> Vocabulary:
        try:
            return await self._names.async_vocabulary(language)
        except Exception:
            _LOGGER.exception("Could not gather the home's names")
            return Vocabulary()

    async def _async_transcribe(
        self,
        stream: AsyncIterable[bytes],
        audio_format: AudioFormat,
        language: str,
        vocabulary: Vocabulary,
    ) -> str | None:
        """Transcribe, answering at a pause that ends a whole command."""

        async def look(audio: bytes) -> str | None:
            return await self.chain.async_transcribe_once(
                audio, audio_format, language, vocabulary
            )

        async def complete(text: str) -> str | None:
            return await self._async_whole_command(text, language)

        early = EarlyEnd(look, complete, looking=self.assistant.settings.early_end)
        text, ending = await early.async_run(
            self.chain.async_transcribe(
                early.watch(stream), audio_format, language, vocabulary
            )
        )
        self.assistant.note_ending(ending)
        if ending.speech_end is not None:
            self._command_log.note(SPEECH_END, ending.speech_end, ending.how)
        if ending.how == ENDED_EARLY or not text:
            # An early answer was already understood (or repaired).
            return text
        return await self._async_understood(text, language)

    async def _async_whole_command(self, text: str, language: str) -> str | None:
        """Return the text to answer with when it is a whole command, else None.

        Whole means the local agent matches it, with targets that exist and
        are exposed, or an automation's sentence does; or a name repair
        makes it so.
        """
        if await self._names.async_command_as_is(text, language):
            return text
        understood = await self._async_understood(text, language, checked=True)
        return understood if understood != text else None

    async def _async_understood(
        self, text: str, language: str, *, checked: bool = False
    ) -> str:
        """Return the transcript with misheard names put right, if any.

        `checked`: it is known to be no command as it is.
        """
        settings = self.assistant.settings
        # Repair judges by Home Assistant's own agent: another agent (a
        # language model) reads the transcript as heard.
        if (
            not settings.repair_names
            or settings.conversation_engine != conversation.HOME_ASSISTANT_AGENT
        ):
            return text
        try:
            repair = await self._names.async_repair(text, language, checked=checked)
        except Exception:
            # A repair is a help, never a reason to lose the command.
            _LOGGER.exception("Could not repair the names in a transcript")
            return text
        if repair is None:
            return text
        _LOGGER.debug("Repaired %r as %r", repair.heard, repair.text)
        self.assistant.note_repair(repair)
        return repair.text


async_setup_entry = speech_platform(
    "stt",
    SttChain,
    lambda assistant: assistant.stt,
    LocalVoiceSttEntity,
    AssistantSttEntity.for_assistant,
)
