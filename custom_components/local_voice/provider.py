"""A Wyoming server and what it really offers.

Servers describe themselves generously: faster-whisper lists a hundred
languages for an English-only model, Piper lists its whole voice catalogue as
installed, openWakeWord versions its model names. `Offer` is the cleaned-up view
the rest of the integration works with.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Mapping, Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
import re
import statistics
import time
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now
from wyoming.info import Info

from .client import normalize_model_name
from .const import CONF_INFO
from .info import parse_info
from .language import base_language, hass_language

# The stall bound: STALL_FACTOR times the recent 95th percentile of answer
# times plus STALL_MARGIN, at least STALL_FLOOR; STALL_DEFAULT (seconds) until
# STALL_SAMPLES answers were measured (the first request of a fresh server
# may load its model), and never more.
STALL_FACTOR = 3.0
STALL_MARGIN = 1.0
STALL_FLOOR = 2.0
STALL_DEFAULT = 15.0
STALL_SAMPLES = 1
ANSWER_TIMES_KEPT = 20

# Model names like "tiny.en", "distil-small.en" or "base-en" are English-only.
_ENGLISH_ONLY = re.compile(r"(^|[._-])en$", re.IGNORECASE)


def _english_only(model_name: str) -> bool:
    """Tell from a model's name (or its path) that it only knows English."""
    stem = PurePath(model_name.rstrip("/\\")).name
    return bool(_ENGLISH_ONLY.search(stem))


@dataclass(frozen=True, slots=True)
class SttModel:
    """A speech-to-text model and the languages it really handles."""

    name: str
    languages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Voice:
    """A text-to-speech voice."""

    name: str
    description: str
    languages: tuple[str, ...]
    speakers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WakeWord:
    """A wake word model: `name` without version suffix, `model` as served."""

    name: str
    phrase: str
    languages: tuple[str, ...]
    model: str


@dataclass(frozen=True, slots=True)
class Offer:
    """What one server offers, with the known quirks removed."""

    stt_program: str | None = None
    stt_models: tuple[SttModel, ...] = ()
    stt_requires_external_vad: bool = True
    tts_program: str | None = None
    voices: tuple[Voice, ...] = ()
    tts_streaming: bool = False
    wake_program: str | None = None
    wake_words: tuple[WakeWord, ...] = ()

    @property
    def services(self) -> list[str]:
        """Return the kinds of service offered: stt, tts, wake_word."""
        kinds = []
        if self.stt_models:
            kinds.append("stt")
        if self.voices:
            kinds.append("tts")
        if self.wake_words:
            kinds.append("wake_word")
        return kinds

    @property
    def name(self) -> str:
        """Return a human name for the server from its programs."""
        names = [
            n for n in (self.stt_program, self.tts_program, self.wake_program) if n
        ]
        return " + ".join(dict.fromkeys(names)) or "Wyoming"

    @property
    def stt_languages(self) -> list[str]:
        """Return the languages speech-to-text handles, Home Assistant style."""
        return sorted(
            {hass_language(lang) for m in self.stt_models for lang in m.languages}
        )

    @property
    def tts_languages(self) -> list[str]:
        """Return the languages of the voices, Home Assistant style."""
        return sorted(
            {hass_language(lang) for v in self.voices for lang in v.languages}
        )

    def voices_for(self, language: str) -> list[Voice]:
        """Return the voices that speak a language (exactly or by its base)."""
        exact = [v for v in self.voices if language in map(hass_language, v.languages)]
        if exact:
            return exact
        base = base_language(language)
        return [
            v
            for v in self.voices
            if base in (base_language(lang) for lang in v.languages)
        ]

    def stt_model_for(self, language: str) -> SttModel | None:
        """Return the model to ask for a language."""
        base = base_language(language)
        for model in self.stt_models:
            if base in (base_language(lang) for lang in model.languages):
                return model
        return None


def offer_from_info(info: Info) -> Offer:
    """Read an Info event into an Offer.

    Only installed programs count. Handle, intent and satellite programs are
    ignored: this integration assembles pipelines from speech services only.
    """
    asr = next((p for p in info.asr if p.installed), None)
    tts = next((p for p in info.tts if p.installed), None)
    wake = next((p for p in info.wake if p.installed), None)

    stt_models: list[SttModel] = []
    if asr is not None:
        for model in asr.models:
            if not model.installed:
                continue
            languages = tuple(model.languages)
            if _english_only(model.name) or _english_only(asr.name):
                languages = ("en",)
            stt_models.append(SttModel(name=model.name, languages=languages))

    voices: list[Voice] = []
    if tts is not None:
        voices = [
            Voice(
                name=voice.name,
                description=voice.description or voice.name,
                languages=tuple(voice.languages),
                speakers=tuple(s.name for s in voice.speakers or ()),
            )
            for voice in tts.voices
            if voice.installed
        ]

    wake_words: list[WakeWord] = []
    if wake is not None:
        seen: set[str] = set()
        for wake_model in wake.models:
            name = normalize_model_name(wake_model.name)
            if not wake_model.installed or name in seen:
                continue
            seen.add(name)
            wake_words.append(
                WakeWord(
                    name=name,
                    phrase=wake_model.phrase or wake_model.description or name,
                    languages=tuple(wake_model.languages),
                    model=wake_model.name,
                )
            )

    return Offer(
        stt_program=asr.name if asr and stt_models else None,
        stt_models=tuple(stt_models),
        stt_requires_external_vad=asr.requires_external_vad if asr else True,
        tts_program=tts.name if tts and voices else None,
        voices=tuple(voices),
        tts_streaming=bool(tts and tts.supports_synthesize_streaming),
        wake_program=wake.name if wake and wake_words else None,
        wake_words=tuple(wake_words),
    )


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """A provider's health at one moment: what its entities show."""

    available: bool
    probe_latency_ms: float | None
    last_request_latency_ms: float | None


@dataclass(slots=True)
class Provider:
    """One Wyoming server: where it is, what it offers, and its health.

    A provider subentry stores the address and the Info the server gave when
    it was added, so that its entities exist while it is down.
    """

    subentry_id: str
    host: str
    port: int
    info: Info
    offer: Offer
    available: bool = False
    probe_latency_ms: float | None = None
    last_request_latency_ms: float | None = None
    last_error: str | None = None
    # Seconds from the end of a request to the server's first answer, recent.
    answer_times: deque[float] = field(
        default_factory=lambda: deque(maxlen=ANSWER_TIMES_KEPT)
    )
    # Changed only through the methods below; read through the properties.
    _missing_voices: set[str] = field(default_factory=set, init=False)
    _in_flight: int = field(default=0, init=False)
    _failovers: int = field(default=0, init=False)
    # Requests waiting on the server's answer that give up when a look at a
    # pause finds it stalled (note_stall).
    _stall_watchers: set[asyncio.Future[str]] = field(default_factory=set, init=False)
    down_since: datetime | None = None

    @classmethod
    def from_info(cls, host: str, port: int, info: Info) -> Provider:
        """Return a server that just answered, under a new subentry id."""
        return cls(
            subentry_id=ulid_now(),
            host=host,
            port=port,
            info=info,
            offer=offer_from_info(info),
            available=True,
        )

    @classmethod
    def from_subentry(cls, subentry: ConfigSubentry) -> Provider:
        """Read a provider subentry; health is unknown until the first probe."""
        return cls.from_data(subentry.subentry_id, subentry.data)

    @classmethod
    def from_data(cls, subentry_id: str, data: Mapping[str, Any]) -> Provider:
        """Read the data of a provider subentry."""
        info = parse_info(dict(data[CONF_INFO]))
        return cls(
            subentry_id=subentry_id,
            host=data[CONF_HOST],
            port=data[CONF_PORT],
            info=info,
            offer=offer_from_info(info),
        )

    def as_data(self) -> dict[str, Any]:
        """Return the data of this provider's subentry."""
        return {
            CONF_HOST: self.host,
            CONF_PORT: self.port,
            CONF_INFO: self.info.event().data,
        }

    @property
    def address(self) -> str:
        """Return host:port."""
        return f"{self.host}:{self.port}"

    @property
    def in_flight(self) -> int:
        """Return how many of this integration's requests are under way."""
        return self._in_flight

    @property
    def failovers(self) -> int:
        """Return how many times a request left this server for another one."""
        return self._failovers

    @property
    def missing_voices(self) -> AbstractSet[str]:
        """Return the advertised voices the server turned down."""
        return self._missing_voices

    def health(self) -> ProviderHealth:
        """Return the health figures as they are now."""
        return ProviderHealth(
            available=self.available,
            probe_latency_ms=self.probe_latency_ms,
            last_request_latency_ms=self.last_request_latency_ms,
        )

    def is_same_server(self, other: Provider) -> bool:
        """Tell whether two providers are one server.

        The same server can be reached as 127.0.0.1, as localhost and by its
        LAN address: the same port with an identical description counts as
        the same server.
        """
        if self.address == other.address:
            return True
        return self.port == other.port and self.info == other.info

    def update_info(self, info: Info, latency_ms: float) -> bool:
        """Record a successful probe; return True when the offer changed."""
        self.available = True
        self.down_since = None
        self.probe_latency_ms = latency_ms
        self.last_error = None
        if info == self.info:
            return False
        self.info = info
        self.offer = offer_from_info(info)
        self._missing_voices.clear()
        return True

    def record_answer_time(self, seconds: float) -> None:
        """Remember how long the server took to answer a complete request."""
        self.answer_times.append(seconds)

    def typical_answer_time(self) -> float:
        """Return the median recent answer time (0 before any request)."""
        return statistics.median(self.answer_times) if self.answer_times else 0.0

    def stall_bound(self, *, besides: int = 0) -> float:
        """Return how long to wait for an answer before calling it a stall.

        A few times the server's own recent 95th percentile plus a margin,
        within [STALL_FLOOR, STALL_DEFAULT]; STALL_DEFAULT until an answer
        was measured. Servers
        answer one request at a time, so with several of this integration's
        requests under way the bound grows with their number, less `besides`
        of them that do not wait on the server yet (a command still streaming
        its audio while a look at its pause is made).
        """
        if len(self.answer_times) < STALL_SAMPLES:
            single = STALL_DEFAULT
        else:
            times = sorted(self.answer_times)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            single = min(
                STALL_DEFAULT, max(STALL_FLOOR, STALL_FACTOR * p95 + STALL_MARGIN)
            )
        return single * max(1, self._in_flight - besides)

    def request_started(self) -> None:
        """Count a request under way; `request_ended` must follow."""
        self._in_flight += 1

    def request_ended(self) -> None:
        """Count a request as no longer under way."""
        self._in_flight -= 1

    @contextmanager
    def watching_stalls(self, *, watch: bool = True) -> Iterator[asyncio.Future[str]]:
        """Yield a future that note_stall resolves with why, while the block runs.

        Without `watch` (nobody else could take over) the future never resolves.
        """
        stalled: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if not watch:
            try:
                yield stalled
            finally:
                stalled.cancel()
            return
        self._stall_watchers.add(stalled)
        try:
            yield stalled
        finally:
            self._stall_watchers.discard(stalled)
            stalled.cancel()

    def note_stall(self, why: str) -> None:
        """A request got no answer within the stall bound: those watching give up."""
        for stalled in self._stall_watchers:
            if not stalled.done():
                stalled.set_result(why)

    def note_failover(self) -> None:
        """Count a request that left this server for another one."""
        self._failovers += 1

    def note_missing_voice(self, voice: str) -> None:
        """Remember a voice the server turned down, until its offer changes."""
        self._missing_voices.add(voice)

    def record_failure(self, error: str) -> None:
        """Record a failed probe or request."""
        self.available = False
        self.last_error = error
        if self.down_since is None:
            self.down_since = dt_util.utcnow()

    def record_request(self, started: float) -> None:
        """Record a successful request that began at `started` (monotonic)."""
        self.available = True
        self.down_since = None
        self.last_error = None
        self.last_request_latency_ms = (time.monotonic() - started) * 1000

    def usable_voices(self, language: str | None = None) -> list[Voice]:
        """Return the advertised voices not known to be missing."""
        voices = (
            self.offer.voices if language is None else self.offer.voices_for(language)
        )
        return [v for v in voices if v.name not in self._missing_voices]


def provider_title(provider: Provider, taken: set[str]) -> str:
    """Name a server after its programs; number it only when the name is taken.

    The title names the device, and so the entity ids: the address stays out
    of it (the device shows it as its hardware detail).
    """
    base = provider.offer.name
    title, number = base, 1
    while title in taken:
        number += 1
        title = f"{base} {number}"
    return title
