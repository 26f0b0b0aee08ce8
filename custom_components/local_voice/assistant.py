"""The assistant: a language, provider chains, a voice and a wake word.

An assistant is what the user thinks of as "my local Alexa". Its settings live
in an `assistant` subentry; this module reads them, works out which languages
its providers and conversation agent share, and checks a language for real by
letting the text-to-speech say a sentence that the speech-to-text must hear.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field
import re
from typing import Any

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from wyoming.audio import AudioChunkConverter, AudioFormat

from .chain import (
    FALLBACK_MEANING,
    Heard,
    ProviderHandle,
    SttChain,
    TtsChain,
    WakeChain,
)
from .early_end import ENDED_BY_SILENCE, ENDED_EARLY, ENDED_READY, Ending
from .language import base_language
from .names import Repair
from .protected import Protection
from .provider import Offer
from .understanding import ASKED, Outcome
from .wake_check import WAKE_CHECK_OFF, WakeLog

CONF_STT_PROVIDERS = "stt_providers"
CONF_TTS_PROVIDERS = "tts_providers"
CONF_WAKE_PROVIDERS = "wake_providers"
CONF_VOICE = "voice"
CONF_WAKE_WORD = "wake_word"
CONF_CONVERSATION_ENGINE = "conversation_engine"
CONF_PREFER_LOCAL_INTENTS = "prefer_local_intents"
CONF_PREFERRED = "preferred"
CONF_POOLED = "pooled"
CONF_KNOWN_PROVIDERS = "known_providers"
CONF_KEEP_DEBUG_RUNS = "keep_debug_runs"
CONF_TTS_CACHE_SECONDS = "tts_cache_seconds"
CONF_REPAIR_NAMES = "repair_names"
CONF_EARLY_END = "early_end"
CONF_COMMAND_TEXT = "command_text"
CONF_PROTECTED = "protected_entities"
CONF_UNPROTECTED = "unprotected_entities"
CONF_WAKE_CHECK = "wake_check"
CONF_STT_FALLBACK = "stt_fallback"
CONF_STT_PROMPT = "stt_prompt"
DEFAULT_TTS_CACHE_SECONDS = 60

RECENT_REPAIRS = 10
RECENT_ENDINGS = 20
RECENT_HEARING = 20

# How a command's transcript was chosen (Assistant.hearing).
HEARD_UNDERSTOOD = "understood"
HEARD_BY_MEANING = "understood_by_next"
HEARD_NOT_UNDERSTOOD = "not_understood"
HEARD_UNJUDGED = "not_judged"

DEFAULT_NAME = "Local Voice"
DEFAULT_AGENT = conversation.HOME_ASSISTANT_AGENT
# Wake words chosen by default, best first.
DEFAULT_WAKE_WORDS = ("alexa", "okay_nabu")

# Seconds the language check allows the server to say, then to hear, its
# sentence. The dialog shows progress meanwhile; a busy two-core machine
# slows Whisper down several times over (7.5 s for a 1.7 s sentence was
# measured while a browser drew the Assist dialog), and a working server must
# not be turned down for it.
CHECK_TIMEOUT = 30.0

# Sentences the language check speaks and expects to hear back.
CHECK_SENTENCES = {
    "en": "Turn on the kitchen light.",
    "de": "Schalte das Licht in der Küche ein.",
    "fr": "Allume la lumière de la cuisine.",
    "es": "Enciende la luz de la cocina.",
    "it": "Accendi la luce della cucina.",
    "nl": "Zet het licht in de keuken aan.",
    "pt": "Acende a luz da cozinha.",
    "pl": "Włącz światło w kuchni.",
    "sv": "Tänd lampan i köket.",
    "da": "Tænd lyset i køkkenet.",
}


@dataclass(frozen=True, slots=True)
class AssistantSettings:
    """What the user chose for an assistant.

    The single source of each setting's default: the flows, the subentry's
    data (also data saved by older versions, which lacks newer settings)
    and the forms read the defaults from here. Each field is stored under
    its own name in the subentry.
    """

    name: str
    language: str
    stt_providers: tuple[str, ...] = ()
    tts_providers: tuple[str, ...] = ()
    wake_providers: tuple[str, ...] = ()
    voice: str | None = None
    wake_word: str | None = None
    conversation_engine: str = DEFAULT_AGENT
    prefer_local_intents: bool = True
    preferred: bool = True
    pooled: bool = False
    # The providers there were when these settings were saved: one added
    # later joins the chains of the services it offers. None (settings from
    # 0.1) means every provider was known.
    known_providers: tuple[str, ...] | None = None
    # Private by default: runs leave the debug history when they end, replies
    # leave the TTS cache after this many seconds.
    keep_debug_runs: bool = False
    tts_cache_seconds: int = DEFAULT_TTS_CACHE_SECONDS
    # Put the home's names in place of what sounds like them when the local
    # agent does not understand a transcript (names.py).
    repair_names: bool = True
    # Answer as soon as a pause ends a whole command (early_end.py).
    early_end: bool = True
    # Put what was said and answered in the local_voice_command event, which
    # the recorder keeps (command_log.py). Off: the event carries no text.
    command_text: bool = False
    # Entities whose commands are asked about besides the default ones
    # (locks, garage doors, gates, door covers, valves), and entities never
    # asked about (protected.py).
    protected_entities: tuple[str, ...] = ()
    unprotected_entities: tuple[str, ...] = ()
    # How sure the second check of each wake must be that the speech-to-text
    # heard the wake word: off, normal or strict (wake_check.py). Off by
    # default: Whisper tiny.en heard two of four synthetic voices' real
    # "Alexa" as other words ("I like that, so"), which would drop them.
    wake_check: str = WAKE_CHECK_OFF
    # When the next speech-to-text server hears the command (chain.py):
    # off, on failure, by meaning or all at once. By meaning changes nothing
    # with one server.
    stt_fallback: str = FALLBACK_MEANING
    # Send the home's names as a Whisper prompt. Off by default: with
    # faster-whisper it cost seconds on silence and noise (README).
    stt_prompt: bool = False

    @property
    def protection(self) -> Protection:
        """Return the entities the user protected and unprotected."""
        return Protection(
            frozenset(self.protected_entities), frozenset(self.unprotected_entities)
        )

    @classmethod
    def default(cls, key: str) -> Any:
        """Return the default of a setting."""
        default = cls.__dataclass_fields__[key].default
        if default is MISSING:
            raise KeyError(f"{key} has no default")
        return default

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AssistantSettings:
        """Read the subentry's data (or a flow's answers); missing keys get defaults."""
        values: dict[str, Any] = {}
        for key in cls.__dataclass_fields__:
            if key not in data:
                continue
            value = data[key]
            if key in _LISTS:
                value = tuple(value or ())
            elif key == CONF_KNOWN_PROVIDERS:
                value = None if value is None else tuple(value)
            elif key in (CONF_VOICE, CONF_WAKE_WORD):
                value = value or None
            elif key == CONF_TTS_CACHE_SECONDS:
                value = int(value)
            values[key] = value
        return cls(**values)

    def as_data(self) -> dict[str, Any]:
        """Return the subentry's data."""
        data = asdict(self)
        for key in (*_LISTS, CONF_KNOWN_PROVIDERS):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


_LISTS = (
    CONF_STT_PROVIDERS,
    CONF_TTS_PROVIDERS,
    CONF_WAKE_PROVIDERS,
    CONF_PROTECTED,
    CONF_UNPROTECTED,
)


@dataclass(slots=True)
class Assistant:
    """A loaded assistant: its settings and its provider chains."""

    subentry_id: str
    settings: AssistantSettings
    stt: SttChain
    tts: TtsChain
    wake: WakeChain
    # Repairs made; the last few are kept (with what was heard) only when
    # the user keeps transcripts, for diagnostics.
    repair_count: int = 0
    repairs: deque[Repair] = field(default_factory=lambda: deque(maxlen=RECENT_REPAIRS))
    # How each command's audio ended: counts, and the last few (no text).
    endings: dict[str, int] = field(
        default_factory=lambda: {ENDED_EARLY: 0, ENDED_READY: 0, ENDED_BY_SILENCE: 0}
    )
    recent_endings: deque[Ending] = field(
        default_factory=lambda: deque(maxlen=RECENT_ENDINGS)
    )
    # What the agent did: questions asked and how they were answered,
    # repairs by kind (understanding.py).
    understood: Counter[str] = field(default_factory=Counter)
    # One transcription action at a time (services.py).
    transcribing: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Wakes: counted, checked, the recent ones (wake_check.py).
    wakes: WakeLog = field(default_factory=WakeLog)
    # How transcripts were chosen: counts, and the last few (no text).
    hearing: Counter[str] = field(default_factory=Counter)
    recent_hearing: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=RECENT_HEARING)
    )

    def note_heard(self, heard: Heard) -> None:
        """Count how a transcript was chosen and keep its figures (no text)."""
        if heard.understood is None:
            how = HEARD_UNJUDGED
        elif not heard.understood:
            how = HEARD_NOT_UNDERSTOOD
        else:
            how = HEARD_BY_MEANING if heard.passed_over else HEARD_UNDERSTOOD
        self.hearing[how] += 1
        self.recent_hearing.append(
            {
                "how": how,
                "provider": heard.provider.address,
                "hops": heard.hops,
                "added_ms": round(heard.added * 1000, 1),
            }
        )

    def note_ending(self, ending: Ending) -> None:
        """Count how a command ended and keep it among the recent ones."""
        self.endings[ending.how] = self.endings.get(ending.how, 0) + 1
        self.recent_endings.append(ending)

    def note_outcome(self, outcome: Outcome, repair: Repair | None) -> None:
        """Count what the agent did; keep a repair only when transcripts may be kept."""
        if outcome.asked:
            self.understood[ASKED] += 1
        if outcome.answer is not None:
            self.understood[outcome.answer] += 1
        if outcome.repaired is not None and not outcome.asked:
            # Acted on: at once, or after a "yes".
            self.understood[f"repaired_{outcome.repaired}"] += 1
            self.repair_count += 1
        if repair is not None and self.settings.keep_debug_runs:
            self.repairs.append(repair)

    @classmethod
    def from_subentry(
        cls, subentry: ConfigSubentry, providers: Mapping[str, ProviderHandle]
    ) -> Assistant:
        """Build the chains from the providers the settings name, in order.

        A provider that was removed since is left out; one added since the
        settings were saved joins, last, each chain of a service it offers.
        """
        settings = AssistantSettings.from_data(subentry.data)
        known = (
            set(providers)
            if settings.known_providers is None
            else set(settings.known_providers)
        )

        def members(ids: tuple[str, ...], service: str) -> list[ProviderHandle]:
            chosen = [providers[i] for i in ids if i in providers]
            added = [
                handle
                for pid, handle in providers.items()
                if pid not in known and service in handle.provider.offer.services
            ]
            return chosen + added

        pooled = settings.pooled
        return cls(
            subentry_id=subentry.subentry_id,
            settings=settings,
            stt=SttChain(members(settings.stt_providers, "stt"), pooled=pooled),
            tts=TtsChain(members(settings.tts_providers, "tts"), pooled=pooled),
            wake=WakeChain(members(settings.wake_providers, "wake_word")),
        )

    @property
    def provider_ids(self) -> set[str]:
        """Return every provider the assistant names, for any service."""
        settings = self.settings
        return {
            *settings.stt_providers,
            *settings.tts_providers,
            *settings.wake_providers,
        }


def agent_languages(hass: HomeAssistant, agent_id: str) -> set[str] | None:
    """Return the agent's languages, or None when it takes any language."""
    try:
        languages = conversation.async_get_conversation_languages(hass, agent_id)
    except ValueError:
        return set()
    if languages == MATCH_ALL:
        return None
    return set(languages)


def shared_languages(
    stt: Offer | None, tts: Offer | None, agent: set[str] | None
) -> list[str]:
    """Return the base languages speech-to-text, voices and agent all cover."""
    if stt is None or tts is None:
        return []
    common = {base_language(t) for t in stt.stt_languages} & {
        base_language(t) for t in tts.tts_languages
    }
    if agent is not None:
        common &= {base_language(t) for t in agent}
    return sorted(common)


def default_language(hass: HomeAssistant, languages: list[str]) -> str | None:
    """Prefer Home Assistant's own language, then English, then the first."""
    for wanted in (hass.config.language, "en"):
        if base_language(wanted) in languages:
            return base_language(wanted)
    return languages[0] if languages else None


def default_wake_word(offer: Offer | None) -> str | None:
    """Return "alexa" when offered, else "okay_nabu", else nothing."""
    if offer is None:
        return None
    names = {w.name for w in offer.wake_words}
    return next((w for w in DEFAULT_WAKE_WORDS if w in names), None)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@dataclass(frozen=True, slots=True)
class LanguageCheck:
    """The outcome of saying a sentence and hearing it back.

    `error` is None when the sentence was heard, else the translation key
    of what went wrong.
    """

    sentence: str
    heard: str = ""
    error: str | None = None


async def async_check_language(
    stt: SttChain,
    tts: TtsChain,
    language: str,
    stt_language: str,
    voice: str | None,
) -> LanguageCheck | None:
    """Say a sentence in `language` and check that speech-to-text hears it.

    Returns None for languages without a check sentence. Catches a voice that
    cannot speak the language and a model that does not know it, whatever
    the servers advertise. Saying and hearing get CHECK_TIMEOUT seconds each:
    the check runs while a dialog waits.
    """
    sentence = CHECK_SENTENCES.get(base_language(language))
    if sentence is None:
        return None
    converter = AudioChunkConverter(rate=16000, width=2, channels=1)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            audio = [
                converter.convert(chunk).audio
                async for chunk in tts.async_synthesize(sentence, voice, fallback=False)
            ]
    except TimeoutError:
        return LanguageCheck(sentence, error="tts_check_timeout")
    except HomeAssistantError as err:
        return LanguageCheck(sentence, str(err), error="tts_check_failed")
    if not audio:
        return LanguageCheck(sentence, error="tts_check_failed")

    async def stream() -> AsyncIterator[bytes]:
        for piece in audio:
            yield piece

    expected = _words(sentence)

    def hears(text: str) -> bool:
        got = set(_words(text))
        return sum(1 for word in expected if word in got) >= 0.6 * len(expected)

    async def judge(text: str) -> bool:
        return hears(text)

    # Every server of the chain may be asked, as a command is: a first server
    # that only knows the home's own phrases (Speech-to-Phrase) hands on.
    try:
        async with asyncio.timeout(CHECK_TIMEOUT * max(1, len(stt.members))):
            result = await stt.async_hear(
                stream(),
                AudioFormat(rate=16000, width=2, channels=1),
                stt_language,
                fallback=FALLBACK_MEANING,
                judge=judge,
            )
    except TimeoutError:
        return LanguageCheck(sentence, error="stt_check_timeout")
    heard = result.text if result is not None else ""
    if not hears(heard):
        return LanguageCheck(sentence, heard, error="language_check_failed")
    return LanguageCheck(sentence, heard)
