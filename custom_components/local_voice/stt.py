"""Speech-to-text entities: one per provider, one per assistant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from functools import partial
import logging

from homeassistant.components import stt
from homeassistant.helpers import chat_session
from homeassistant.helpers.device_registry import DeviceInfo
from rapidfuzz import fuzz
from wyoming.audio import AudioFormat

from .assistant import Assistant
from .chain import FALLBACK_MEANING, FALLBACK_TOGETHER, Heard, SttChain, Vocabulary
from .closest import flips
from .command_log import SPEECH_END, STT_CHAIN, chain_detail
from .early_end import EarlyEnd
from .entity import LocalVoiceEntity, speech_platform
from .models import LocalVoiceData
from .names import words
from .protected import asks_for
from .understanding import NO_ANSWER
from .wake_check import QUIET, Wake, async_check, checked, strip_wake_word

PARALLEL_UPDATES = 0

# Below this word similarity (rapidfuzz's ratio, 0 to 100) a transcript passed
# over and the one chosen are two different sentences, not one misheard.
ALIKE = 60.0


def disagree(passed_over: str, chosen: str) -> bool:
    """Return whether a server heard another command than the one chosen.

    Another direction ("on" for "off") or other words; a server that heard
    the same sentence with a word wrong ("chicken" for "kitchen") agrees.
    """
    if flips(passed_over, chosen):
        return True
    said, heard = " ".join(words(passed_over)), " ".join(words(chosen))
    return fuzz.ratio(said, heard) < ALIKE


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
    """An assistant's speech-to-text: steered, and ended early when that is safe.

    It reports what was heard; the assistant's agent repairs and asks
    (understanding.py).
    """

    def __init__(
        self,
        assistant: Assistant,
        chain: SttChain,
        unique_id: str,
        device: DeviceInfo,
        *,
        data: LocalVoiceData,
    ) -> None:
        """Keep the assistant (settings, record) and the entry's services."""
        super().__init__(chain, unique_id, device)
        self.assistant = assistant
        self._names = data.names
        self._grammar = data.grammar
        self._understanding = data.understanding
        self._command_log = data.command_log

    @classmethod
    def for_assistant(
        cls,
        data: LocalVoiceData,
        assistant: Assistant,
        chain: SttChain,
        unique_id: str,
        device: DeviceInfo,
    ) -> AssistantSttEntity:
        """Make the assistant's entity with the entry's services."""
        return cls(assistant, chain, unique_id, device, data=data)

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
        session = chat_session.current_session.get()
        conversation_id = session.conversation_id if session is not None else None

        async def complete(text: str) -> str | None:
            return await self._async_whole_command(text, language)

        answering = conversation_id is not None and (
            self._understanding.waiting_for_answer(conversation_id)
        )
        wake = self.assistant.wakes.of(conversation_id)
        # The audio starts before the wake word when the wake word entity
        # handed it on: the word is taken off what is heard.
        phrase = wake.phrase if wake is not None and wake.lead_seconds else None

        def heard(text: str | None) -> str | None:
            return strip_wake_word(text, phrase) if text and phrase else text

        settings = self.assistant.settings
        # By meaning: the agent judges each transcript, and one it does not
        # understand goes to the next server. An answer to a question is no
        # command: it is not judged.
        by_meaning = (
            settings.stt_fallback in (FALLBACK_MEANING, FALLBACK_TOGETHER)
            and len(self.chain.members) > 1
            and not answering
        )

        async def understood(text: str) -> bool:
            stripped = heard(text) or ""
            if not words(stripped):
                return False
            return await self._names.async_command_as_is(
                stripped, language
            ) or await self._names.async_names_the_untouchable(stripped, language)

        async def look(audio: bytes) -> str | None:
            return heard(
                await self.chain.async_transcribe_once(
                    audio,
                    audio_format,
                    language,
                    vocabulary,
                    prompt=settings.stt_prompt,
                )
            )

        early = EarlyEnd(
            look,
            complete,
            looking=settings.early_end and not answering,
            usable=understood if by_meaning else None,
        )
        if wake is not None and wake.need is not None and wake.check is None:
            stream = checked(
                stream,
                wake,
                partial(self._start_check, wake, audio_format, language),
                audio_format.rate * audio_format.width * audio_format.channels,
            )
        chosen: list[Heard] = []

        async def hear() -> str | None:
            result = await self.chain.async_hear(
                early.watch(stream),
                audio_format,
                language,
                vocabulary,
                fallback=settings.stt_fallback,
                judge=understood if by_meaning else None,
                prompt=settings.stt_prompt,
            )
            if result is None:
                return None
            chosen.append(result)
            return result.text or None

        transcribing = asyncio.create_task(
            early.async_run(hear()), name="local_voice transcription"
        )
        try:
            if wake is not None and wake.need is not None:
                # A wake the check drops ends here, quietly: no more listening.
                # The check starts once the audio after the wake word is in.
                while wake.check is None and not transcribing.done():
                    await asyncio.wait({transcribing}, timeout=0.05)
                if wake.check is not None:
                    await asyncio.wait(
                        {transcribing, wake.check},
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                if wake.dropped():
                    return QUIET
            text, ending = await transcribing
        finally:
            if not transcribing.done():
                transcribing.cancel()
                await asyncio.wait({transcribing})
        raw, text = text, heard(text)
        self.assistant.note_ending(ending)
        if ending.speech_end is not None:
            self._command_log.note(SPEECH_END, ending.speech_end, ending.how)
        if answering and (ending.speech_end is None or not words(text or "")):
            # Silence after a question is its answer, whatever a recogniser
            # makes of it: the agent says so.
            text = NO_ANSWER
        doubt = False
        if chosen and chosen[0].text and chosen[0].text == raw:
            result = chosen[0]
            self.assistant.note_heard(result)
            self._command_log.note(
                STT_CHAIN, detail=chain_detail(result.hops, result.added)
            )
            # A server that heard another command: the chosen one is asked about.
            doubt = bool(result.understood) and any(
                disagree(heard(other) or "", text or "") for other in result.passed_over
            )
        elif raw:
            # Ended early on the first server's look: nobody else was asked.
            self._command_log.note(STT_CHAIN, detail=chain_detail(0, 0.0))
        if text and conversation_id is not None:
            self._understanding.note_spoken(conversation_id, text, doubt=doubt)
        if not words(text or ""):
            # Nothing to act on: the agent is not asked.
            self.assistant.wakes.settle(conversation_id, command=False)
        return text

    def _start_check(
        self, wake: Wake, audio_format: AudioFormat, language: str, audio: bytes
    ) -> None:
        """Start the second check of a wake: is the wake word in its audio?"""
        chain = self.chain

        async def transcribe(audio: bytes) -> str | None:
            return await chain.async_transcribe_once(
                audio, audio_format, language, Vocabulary()
            )

        self.assistant.wakes.check(wake, partial(async_check, wake, audio, transcribe))

    async def _async_whole_command(self, text: str, language: str) -> str | None:
        """Return the text when it is a whole command to answer with at once.

        Whole means the local agent matches it as heard, with exposed targets
        that exist; no longer sentence of this home starts with it (the
        speaker may be saying an area, a delay, a position or a longer name
        next); and it is not protected (a question is no shortcut). A sentence
        that only a repair would make a command waits for the normal end.
        """
        result = await self._names.async_match(text, language)
        if result is None or not self._names.understood(result):
            return None
        settings = self.assistant.settings
        if asks_for(self.hass, result, settings.protection):
            return None
        # Every command is the start of its delayed form ("... in 10
        # minutes"), which no device's lack of timers makes safe to cut: the
        # command would be done at once instead of later, or not at all.
        if await self._grammar.async_goes_on(text, language, timers=True):
            return None
        return text


async_setup_entry = speech_platform(
    "stt",
    SttChain,
    lambda assistant: assistant.stt,
    LocalVoiceSttEntity,
    AssistantSttEntity.for_assistant,
)
