"""Speech services over an ordered list of providers, with failover.

A provider's own entities use a chain of one; an assistant's entities use the
providers chosen for it, in the order chosen (or, pooled, the least busy
healthy one first). A request goes to the first candidate; when that one
refuses, drops the connection, errs, stalls or hears nothing, the next one
gets what the first was given (replayed) and the rest live:

- speech-to-text keeps the command's audio and sends it again;
- text-to-speech moves on only before the first audio reaches the caller,
  with the text received so far when the text is streamed;
- the wake word listener moves on with the last second of audio, so a wake
  word spoken during the switch is still heard.

An assistant's speech-to-text may also move on by meaning (`fallback`): when
its agent does not understand a transcript, the next server hears the same
audio, and the first understood transcript wins; or all servers hear it at
once and the first understood answer wins. Each such hop is bounded in time
(HOP_SECONDS), and what the chain added is reported with the transcript.

A stall is judged against the provider's own recent answer times (see
Provider.stall_bound). Every outcome is folded into the provider's health;
each failover is logged once at INFO and counted on the provider left.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
import logging
import time
from typing import Any, Protocol

from homeassistant.core import CALLBACK_TYPE
from homeassistant.exceptions import HomeAssistantError
from wyoming.audio import AudioChunk, AudioFormat

from .client import (
    ServerError,
    ServerTimeoutError,
    Timeouts,
    WyomingError,
    async_detect,
    async_synthesize,
    async_transcribe,
)
from .const import DOMAIN
from .language import base_language
from .provider import Provider, WakeWord
from .replay import Recent, Replay, close_all

_LOGGER = logging.getLogger(__name__)

# Home Assistant hands wake word engines 16 kHz 16-bit mono audio.
WAKE_AUDIO = AudioFormat(rate=16000, width=2, channels=1)
# Wake word audio handed to the next listener after a failover: about 1 s of
# Home Assistant's 10 ms chunks.
WAKE_REPLAY_CHUNKS = 100
# A second model's look at a wake (async_confirm): 20 ms chunks, then this
# much silence in real time (0.6 s), all within a bound.
WAKE_CHUNK_BYTES = 640
CONFIRM_SILENCE_CHUNKS = 30
CONFIRM_TIMEOUT = 5.0
# The audio of one command kept for a replay: 5 minutes of 16 kHz speech.
STT_REPLAY_BYTES = 5 * 60 * 32000
# Text of one streamed reply kept for a replay.
TTS_REPLAY_CHARACTERS = 100_000


# Speech-to-text servers of an assistant move on to the next one:
FALLBACK_OFF = "off"  # never: the first server only
FALLBACK_FAILURE = "failure"  # when a server fails or hears nothing
FALLBACK_MEANING = "meaning"  # also when the agent does not understand
FALLBACK_TOGETHER = "together"  # all at once, the first understood answer wins
FALLBACKS = (FALLBACK_OFF, FALLBACK_FAILURE, FALLBACK_MEANING, FALLBACK_TOGETHER)
# How long a server is given once another one has answered: the audio is all
# there, so a server that takes longer is stalled or far slower than the one
# that answered, and the command already has a transcript to go on with.
HOP_SECONDS = 8.0
# The longest prompt sent along: Whisper reads at most 224 tokens of it, and
# a token of names is about four characters.
PROMPT_CHARACTERS = 400
# Words of common commands put after the names, per language.
PROMPT_WORDS = {
    "en": (
        "turn on, turn off, open, close, lock, unlock, set, brightness,"
        " percent, temperature"
    ),
}

# Whether the agent understands a transcript.
type Judge = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The home's words a speech-to-text server may be steered with."""

    names: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()

    def prompt(self, language: str | None = None) -> str | None:
        """Return the home's names, then common command words, as a Whisper prompt.

        Sorted, so the same home always sends the same prompt; names past
        the bound are left out whole. The command words are those of
        `language` (PROMPT_WORDS), none for a language without them. None
        without names. Measured in the README ("The home's names as a
        prompt"): names alone put the home's names into sentences about
        other things more often than names with command words.
        """
        words = PROMPT_WORDS.get(base_language(language)) if language else None
        room = PROMPT_CHARACTERS - (len(words) + 2 if words else 0)
        prompt = ""
        seen: set[str] = set()
        for name in sorted(self.names, key=str.casefold):
            if not (key := name.casefold().strip()) or key in seen:
                continue
            seen.add(key)
            longer = f"{prompt}, {name.strip()}" if prompt else name.strip()
            if len(longer) > room:
                break
            prompt = longer
        if not prompt:
            return None
        return f"{prompt}, {words}" if words else prompt


class ProviderHandle(Protocol):
    """A provider and the place its request outcomes are reported to."""

    @property
    def provider(self) -> Provider:
        """Return the provider."""

    def report_request(self, started: float, error: WyomingError | None = None) -> None:
        """Record the outcome of a request."""

    def async_add_listener(self, update_callback: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update_callback` when the provider's health changes; return the undo."""


@dataclass(slots=True)
class UnmanagedProvider:
    """A provider without health tracking, as used while a flow checks it."""

    provider: Provider

    def report_request(self, started: float, error: WyomingError | None = None) -> None:
        """Nothing tracks this provider's health."""

    def async_add_listener(self, update_callback: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Nothing tracks this provider's health, so nothing ever changes."""
        return lambda: None


@dataclass(frozen=True, slots=True)
class Detected:
    """A wake word heard, with the audio read past it."""

    name: str
    phrase: str
    timestamp: int | None
    queued: list[tuple[bytes, int]]


class Chain:
    """An ordered list of providers for one kind of service."""

    def __init__(
        self, members: Sequence[ProviderHandle], *, pooled: bool = False
    ) -> None:
        """Keep the providers in order; `pooled` spreads requests by load."""
        self.members = members
        self.pooled = pooled

    @property
    def primary(self) -> ProviderHandle | None:
        """Return the provider whose offer the chain presents."""
        return self.members[0] if self.members else None

    @property
    def provider(self) -> Provider | None:
        """Return the primary provider's state."""
        primary = self.primary
        return primary.provider if primary else None

    @property
    def available(self) -> bool:
        """Return True while any provider of the chain is up."""
        return any(member.provider.available for member in self.members)

    def candidates(self) -> list[ProviderHandle]:
        """Return the providers in the order to try them.

        Healthy ones first: in the chosen order, or, pooled, the one with
        the fewest requests under way and then the quickest recent answers.
        Providers marked down come last, as a last resort.
        """
        healthy = [m for m in self.members if m.provider.available]
        if self.pooled:
            healthy.sort(
                key=lambda m: (m.provider.in_flight, m.provider.typical_answer_time())
            )
        return healthy + [m for m in self.members if not m.provider.available]

    def _require(self) -> list[ProviderHandle]:
        candidates = self.candidates()
        if not candidates:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="no_provider"
            )
        return candidates


# How long the last provider left is waited for, at least. A busy machine
# can slow a Whisper server down several times over (measured: 7.5 s for a
# 1.7 s command while a browser drew the Assist dialog on the same two cores),
# and a frozen one must still end in a clear error soon enough.
LAST_PATIENCE = 30.0


def _patience(provider: Provider, last: bool) -> float:
    """Return how long to wait for a provider before giving up on it.

    Its stall bound while another provider could take over; with none left,
    giving up early would only lose the request, so the wait is generous.
    """
    bound = provider.stall_bound()
    return max(bound, LAST_PATIENCE) if last else bound


@dataclass(slots=True)
class Attempt:
    """One provider's turn at a request."""

    service: str
    handle: ProviderHandle
    index: int
    # The provider that takes over when this one is given up on.
    following: ProviderHandle | None
    given_up: bool = False

    @property
    def provider(self) -> Provider:
        """Return the provider whose turn it is."""
        return self.handle.provider

    @property
    def last(self) -> bool:
        """Return True when no other provider follows this one."""
        return self.following is None

    def give_up(self, reason: object, *, replayable: bool = True) -> None:
        """Leave this provider for the next one, if any.

        Without one (none follows, or what this one was given cannot be
        given again) the failure is logged as final; else it is logged and
        counted as a failover on the provider left.
        """
        self.given_up = True
        provider = self.provider
        if not replayable:
            self.following = None
        if self.following is None:
            _LOGGER.warning(
                "%s at %s failed (%s); no other provider to try",
                self.service,
                provider.address,
                reason,
            )
            return
        provider.note_failover()
        _LOGGER.info(
            "%s at %s failed (%s, stall bound %.1f s); trying %s",
            self.service,
            provider.address,
            reason,
            provider.stall_bound(),
            self.following.provider.address,
        )

    def move_on(self, reason: object) -> None:
        """Leave this provider, which answered, for the next one: no failure."""
        self.given_up = True
        if self.following is not None:
            _LOGGER.debug(
                "%s at %s: %s; asking %s",
                self.service,
                self.provider.address,
                reason,
                self.following.provider.address,
            )


def _failover(service: str, candidates: Sequence[ProviderHandle]) -> Iterator[Attempt]:
    """Hand each candidate its turn at a request, in order.

    The loop ends the request (returns or raises) when an attempt answers or
    fails for good; an attempt that is to be followed by the next candidate
    calls `give_up` and lets the loop go on. The loop ends without an answer
    after the last candidate or a request that cannot be replayed.
    """
    for index, handle in enumerate(candidates):
        following = candidates[index + 1] if index + 1 < len(candidates) else None
        attempt = Attempt(service, handle, index, following)
        yield attempt
        if not attempt.given_up or attempt.following is None:
            return


@contextmanager
def _request(
    handle: ProviderHandle, *, in_flight: bool = True, health: bool = True
) -> Iterator[float]:
    """Keep the books of one request to a provider; yield when it started.

    While the block runs the request counts as under way on the provider
    (`in_flight`), and its outcome, success or the WyomingError that ends the
    block, is reported to the handle (`health`). Any other exception (the
    caller went away) is no outcome.
    """
    provider = handle.provider
    started = time.monotonic()
    if in_flight:
        provider.request_started()
    try:
        yield started
    except WyomingError as err:
        if health:
            handle.report_request(started, err)
        raise
    else:
        if health:
            handle.report_request(started)
    finally:
        if in_flight:
            provider.request_ended()


async def _unless_stalled[T](work: Awaitable[T], stalled: asyncio.Future[str]) -> T:
    """Return what `work` returns, or give it up when `stalled` resolves first.

    A request that another request found the server stalled on ends with a
    ServerTimeoutError, as if it had waited out its own bound.
    """
    task = asyncio.ensure_future(work)
    waiting: set[asyncio.Future[Any]] = {task, stalled}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled() and stalled.done() and not stalled.cancelled():
        raise ServerTimeoutError(stalled.result())
    return task.result()


@dataclass(frozen=True, slots=True)
class _SttRequest:
    """What every server of one command is sent besides the audio."""

    audio_format: AudioFormat
    language: str
    vocabulary: Vocabulary
    prompt: str | None


@dataclass(frozen=True, slots=True)
class Heard:
    """A transcript and the provider that made it.

    `understood`: what the agent made of it, None when it was not asked.
    `hops`: the servers asked after the first one; `added`: the seconds
    spent after the first server answered or failed. `passed_over`: the
    transcripts not understood before this one was chosen.
    """

    text: str
    provider: Provider
    understood: bool | None = None
    hops: int = 0
    added: float = 0.0
    passed_over: tuple[str, ...] = ()


@dataclass(slots=True)
class _Hearing:
    """What one command's servers said so far."""

    started: float = field(default_factory=time.monotonic)
    # When the first server answered or was given up on.
    first_done: float | None = None
    hops: int = 0
    # The first transcript with words, and its provider.
    fallback: tuple[str, Provider] | None = None
    empty: Provider | None = None
    passed_over: list[str] = field(default_factory=list)

    def done(self) -> None:
        if self.first_done is None:
            self.first_done = time.monotonic()

    def heard(self, text: str, provider: Provider) -> None:
        self.done()
        if text:
            if self.fallback is None:
                self.fallback = (text, provider)
        elif self.empty is None:
            self.empty = provider

    def result(
        self,
        chosen: tuple[str, Provider] | None = None,
        understood: bool | None = None,
    ) -> Heard | None:
        """Return the chosen transcript, else the first with words, else nothing."""
        if chosen is None:
            chosen = self.fallback
            if chosen is None and self.empty is not None:
                chosen = ("", self.empty)
        if chosen is None:
            return None
        text, provider = chosen
        added = time.monotonic() - self.first_done if self.first_done else 0.0
        return Heard(
            text,
            provider,
            understood,
            self.hops,
            round(added, 3),
            tuple(t for t in self.passed_over if t != text),
        )


async def _async_judge(judge: Judge, text: str) -> bool:
    """Return the agent's verdict; one that cannot be had takes the text as is."""
    try:
        return await judge(text)
    except Exception:
        _LOGGER.exception("Could not ask the agent about a transcript")
        return True


class SttChain(Chain):
    """Speech-to-text over a chain of providers."""

    @property
    def languages(self) -> list[str]:
        """Return the languages of the primary provider's model."""
        provider = self.provider
        return provider.offer.stt_languages if provider else []

    async def async_transcribe(
        self,
        stream: AsyncIterable[bytes],
        audio_format: AudioFormat,
        language: str,
        vocabulary: Vocabulary = Vocabulary(),
    ) -> str | None:
        """Return the transcript, or None when every provider failed or heard nothing."""
        heard = await self.async_hear(stream, audio_format, language, vocabulary)
        if heard is None or not heard.text:
            return None
        return heard.text

    async def async_hear(
        self,
        stream: AsyncIterable[bytes],
        audio_format: AudioFormat,
        language: str,
        vocabulary: Vocabulary = Vocabulary(),
        *,
        fallback: str = FALLBACK_FAILURE,
        judge: Judge | None = None,
        prompt: bool = False,
    ) -> Heard | None:
        """Return what was heard and by whom ("" for nothing), or None on failure.

        `fallback` says when the next server is asked (FALLBACKS); `judge`
        says whether a transcript is understood, for the modes by meaning;
        `prompt` sends the home's names as a Whisper prompt.
        """
        candidates = self._require()
        if fallback == FALLBACK_OFF:
            candidates = candidates[:1]
        request = _SttRequest(
            audio_format,
            language,
            vocabulary,
            vocabulary.prompt(language) if prompt else None,
        )
        audio = Replay(stream, STT_REPLAY_BYTES)
        try:
            if (
                judge is None
                or len(candidates) < 2
                or fallback
                in (
                    FALLBACK_OFF,
                    FALLBACK_FAILURE,
                )
            ):
                return await self._async_in_turn(candidates, audio, request, None)
            if fallback == FALLBACK_TOGETHER:
                return await self._async_together(candidates, audio, request, judge)
            return await self._async_in_turn(candidates, audio, request, judge)
        finally:
            await audio.close()

    async def _async_in_turn(
        self,
        candidates: list[ProviderHandle],
        audio: Replay[bytes],
        request: _SttRequest,
        judge: Judge | None,
    ) -> Heard | None:
        """Ask one server after another: on failure, and with a judge by meaning."""
        hearing = _Hearing()
        for attempt in _failover("Speech-to-text", candidates):
            if attempt.index:
                hearing.hops += 1
            # Once a transcript is in hand, a server gets a hop's time.
            hop = hearing.fallback is not None
            text, reason = await self._attempt(attempt, audio, request, hop=hop)
            if text is None:
                hearing.done()
            else:
                hearing.heard(text, attempt.provider)
            if text and judge is None:
                return hearing.result((text, attempt.provider))
            if text and judge is not None:
                if await _async_judge(judge, text):
                    return hearing.result((text, attempt.provider), understood=True)
                hearing.passed_over.append(text)
                reason = "not understood"
                if attempt.last or not audio.complete:
                    return hearing.result(understood=False)
                attempt.move_on(reason)
                continue
            if text is not None and (attempt.last or not audio.complete):
                # Heard nothing, and nobody else to ask.
                return hearing.result(
                    understood=False if hearing.fallback is not None else None
                )
            if not attempt.last and not audio.complete:
                reason = f"{reason}; the command is too long to replay"
            attempt.give_up(reason, replayable=audio.complete)
        return hearing.result(
            understood=False if hearing.fallback is not None and judge else None
        )

    async def _async_together(
        self,
        candidates: list[ProviderHandle],
        audio: Replay[bytes],
        request: _SttRequest,
        judge: Judge,
    ) -> Heard | None:
        """Ask every server at once; the first understood answer wins.

        Once one server has answered (a failure does not count), the others
        get HOP_SECONDS more. With no answer understood, the first server's
        (in the chosen order) that has words goes on.
        """
        hearing = _Hearing()
        hearing.hops = len(candidates) - 1
        tasks: dict[asyncio.Task[tuple[str | None, str]], Attempt] = {}
        for index, handle in enumerate(candidates):
            attempt = Attempt("Speech-to-text", handle, index, None)
            # No server stands in for another: each is waited for as the last.
            task = asyncio.create_task(
                self._attempt(attempt, audio, request),
                name="local_voice transcription together",
            )
            tasks[task] = attempt
        answers: dict[int, str] = {}
        pending = set(tasks)
        deadline: float | None = None
        try:
            while pending:
                timeout = (
                    None if deadline is None else max(0.0, deadline - time.monotonic())
                )
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    break
                for task in sorted(done, key=lambda t: tasks[t].index):
                    attempt = tasks[task]
                    text, reason = task.result()
                    if text is None:
                        hearing.done()
                        _LOGGER.info(
                            "Speech-to-text at %s failed (%s)",
                            attempt.provider.address,
                            reason,
                        )
                        continue
                    # An answer in hand: the others get a hop's time. A
                    # server that failed starts no such clock.
                    if deadline is None:
                        deadline = time.monotonic() + HOP_SECONDS
                    hearing.heard(text, attempt.provider)
                    answers[attempt.index] = text
                    if text and await _async_judge(judge, text):
                        return hearing.result((text, attempt.provider), understood=True)
                    if text:
                        hearing.passed_over.append(text)
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        # None understood: the first one in order with words.
        for index in sorted(answers):
            if answers[index]:
                hearing.fallback = (answers[index], candidates[index].provider)
                break
        return hearing.result(understood=False if hearing.fallback else None)

    async def _attempt(
        self,
        attempt: Attempt,
        audio: Replay[bytes],
        request: _SttRequest,
        *,
        hop: bool = False,
    ) -> tuple[str | None, str]:
        """Send the command to one provider; return the text or why there is none.

        A `hop` (a transcript is in hand already) is over in HOP_SECONDS,
        connection included.
        """
        provider = attempt.provider
        model = provider.offer.stt_model_for(request.language)
        patience = _patience(provider, attempt.last)
        timeouts = (
            Timeouts(first_event=min(patience, HOP_SECONDS), total=HOP_SECONDS)
            if hop
            else Timeouts(first_event=patience)
        )
        # The audio goes to the server as it came: measured on live-like
        # audio in seven voices, silence put in front of it (which once kept
        # Whisper from dropping a first word) lost as many commands as it won.
        stream = audio.iterate()
        try:
            # A look that finds the server stalled ends this request too,
            # unless no other server could take over.
            with (
                _request(attempt.handle),
                provider.watching_stalls(watch=not attempt.last) as stalled,
            ):
                text = await _unless_stalled(
                    async_transcribe(
                        provider.host,
                        provider.port,
                        stream,
                        request.audio_format,
                        language=base_language(request.language),
                        model=model.name if model else None,
                        timeouts=timeouts,
                        names=request.vocabulary.names,
                        terms=request.vocabulary.terms,
                        prompt=request.prompt,
                    ),
                    stalled,
                )
                if audio.ended_at is not None:
                    provider.record_answer_time(time.monotonic() - audio.ended_at)
        except WyomingError as err:
            return None, str(err)
        finally:
            await close_all(stream)
        return text, "empty transcript"

    async def async_transcribe_once(
        self,
        audio: bytes,
        audio_format: AudioFormat,
        language: str,
        vocabulary: Vocabulary = Vocabulary(),
        *,
        prompt: bool = False,
    ) -> str | None:
        """Return what the first candidate hears in a piece of audio, or None.

        A look on the side while the command goes on (early_end.py): no
        failover, and its outcome does not count towards the provider's
        health, which the command's own request judges.
        """
        candidates = self.candidates()
        if not candidates:
            return None
        provider = candidates[0].provider
        model = provider.offer.stt_model_for(language)

        async def whole() -> AsyncGenerator[bytes]:
            yield audio

        try:
            # Under way like any request, but no outcome for its health. The
            # command's own request streams meanwhile: a server transcribes
            # it only at its end, so it is not waited for here.
            with _request(candidates[0], health=False) as started:
                bound = provider.stall_bound(besides=1)
                text = await async_transcribe(
                    provider.host,
                    provider.port,
                    whole(),
                    audio_format,
                    language=base_language(language),
                    model=model.name if model else None,
                    timeouts=Timeouts(first_event=bound),
                    names=vocabulary.names,
                    terms=vocabulary.terms,
                    prompt=vocabulary.prompt(language) if prompt else None,
                )
                # Its audio was all there at once: the time to its answer is
                # what a command waits after its end, and a command that a
                # look ends never measures its own.
                provider.record_answer_time(time.monotonic() - started)
                return text
        except ServerTimeoutError as err:
            # The server took in the audio and said nothing within its bound:
            # the command's own request to it would wait as long again after
            # the end of the speech, so it goes to the next server now.
            _LOGGER.debug("A look at a pause stalled at %s: %s", provider.address, err)
            provider.note_stall(
                f"{provider.address} did not answer a look at the pause"
                f" in {bound:.1f} s"
            )
            return None
        except WyomingError as err:
            _LOGGER.debug("A look at a pause failed at %s: %s", provider.address, err)
            return None


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
        """Yield audio from the first provider that produces some.

        A voice a server turns down is remembered as missing and, for a plain
        text, the same server is asked again with its default voice; the next
        provider speaks with the voice if it has it, else its default. With
        `fallback` off (a voice being checked) nothing stands in.
        """
        candidates = self._require()
        if not fallback:
            candidates = candidates[:1]
        source: str | Replay[str]
        replay: Replay[str] | None = None
        if isinstance(text, str):
            source = text
        else:
            source = replay = Replay(text, TTS_REPLAY_CHARACTERS)
        try:
            for attempt in _failover("Text-to-speech", candidates):
                chunks = self._attempt(attempt, source, voice, speaker, fallback)
                produced = False
                try:
                    async for chunk in chunks:
                        produced = True
                        yield chunk
                except WyomingError as err:
                    if (
                        produced
                        or attempt.last
                        or (replay is not None and not replay.complete)
                    ):
                        raise _tts_error(attempt.provider, err) from err
                    attempt.give_up(err)
                else:
                    return
                finally:
                    await chunks.aclose()
        finally:
            if replay is not None:
                await replay.close()

    async def _attempt(
        self,
        attempt: Attempt,
        text: str | Replay[str],
        voice: str | None,
        speaker: str | None,
        fallback: bool,
    ) -> AsyncGenerator[AudioChunk]:
        """Yield one provider's audio; raise WyomingError when it fails first."""
        provider = attempt.provider
        if (
            fallback
            and voice is not None
            and (
                voice in provider.missing_voices
                or voice not in {v.name for v in provider.offer.voices}
            )
        ):
            voice = None
        produced = False
        with _request(attempt.handle) as started:
            for use_voice in (
                (voice, None) if voice is not None and fallback else (voice,)
            ):
                source = text if isinstance(text, str) else text.iterate()
                if not isinstance(source, str) and not provider.offer.tts_streaming:
                    source = "".join([part async for part in source])
                try:
                    async for chunk in async_synthesize(
                        provider.host,
                        provider.port,
                        source,
                        voice=use_voice,
                        speaker=speaker if use_voice else None,
                        timeouts=Timeouts(
                            first_event=_patience(provider, attempt.last)
                        ),
                    ):
                        if not produced:
                            produced = True
                            if isinstance(text, str):
                                # A streamed text's first audio waits on the
                                # text itself: no measure of the server.
                                provider.record_answer_time(time.monotonic() - started)
                        yield chunk
                except ServerError as err:
                    if use_voice is not None and not produced:
                        provider.note_missing_voice(use_voice)
                        if fallback and isinstance(text, str):
                            _LOGGER.warning(
                                "%s does not have voice %s (%s); using its default voice",
                                provider.address,
                                use_voice,
                                err,
                            )
                            continue
                    raise
                finally:
                    if not isinstance(source, str):
                        await close_all(source)
                return


def _tts_error(provider: Provider, err: Exception) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="tts_failed",
        translation_placeholders={"address": provider.address, "error": str(err)},
    )


class WakeChain(Chain):
    """Wake word detection over a chain of providers."""

    def word(self, name: str, provider: Provider | None = None) -> WakeWord | None:
        """Return a provider's wake word of this name (the primary's by default)."""
        provider = provider or self.provider
        if provider is None:
            return None
        return next((w for w in provider.offer.wake_words if w.name == name), None)

    def partners(self, detected: Detected) -> list[tuple[Provider, WakeWord]]:
        """Return other models of the detected phrase: a second opinion on it.

        Another model name with the same phrase, on any provider of the
        chain (openWakeWord's "alexa" beside microWakeWord's, say); the same
        model on another server would only agree with itself.
        """
        phrase = detected.phrase.casefold().strip()
        found: list[tuple[Provider, WakeWord]] = []
        for handle in self.candidates():
            provider = handle.provider
            found.extend(
                (provider, word)
                for word in provider.offer.wake_words
                if word.phrase.casefold().strip() == phrase
                and word.name != detected.name
            )
        return found

    async def async_confirm(
        self, provider: Provider, word: WakeWord, audio: bytes
    ) -> bool:
        """Return whether another model hears its wake word in this audio.

        The audio goes faster than real time, then silence (a detector fires
        only once the word is over) at a pace a detector that works in its
        own time keeps up with.
        """

        async def chunks() -> AsyncIterator[tuple[bytes, int]]:
            step = WAKE_CHUNK_BYTES
            for offset in range(0, len(audio), step):
                yield audio[offset : offset + step], offset // 32
            end = len(audio) // 32
            for n in range(CONFIRM_SILENCE_CHUNKS):
                await asyncio.sleep(WAKE_CHUNK_BYTES / 32000)
                yield bytes(WAKE_CHUNK_BYTES), end + n * WAKE_CHUNK_BYTES // 32

        detection, _ = await async_detect(
            provider.host,
            provider.port,
            chunks(),
            WAKE_AUDIO,
            names=[word.model],
            timeouts=Timeouts(first_event=CONFIRM_TIMEOUT, total=CONFIRM_TIMEOUT),
        )
        return detection is not None

    async def async_detect(
        self, stream: AsyncIterable[tuple[bytes, int]], wake_word_id: str | None
    ) -> Detected | None:
        """Listen until the wake word is heard or the audio ends.

        A listener that fails is replaced by the next provider that knows the
        wake word, which first hears the last second of audio.
        """
        everyone = self._require()
        # Providers that know the word; if none does, the name is sent as is.
        candidates = [
            m
            for m in everyone
            if wake_word_id is None or self.word(wake_word_id, m.provider)
        ] or everyone
        audio = Recent(stream, WAKE_REPLAY_CHUNKS)
        try:
            for attempt in _failover("Wake word detection", candidates):
                provider = attempt.provider
                word = self.word(wake_word_id, provider) if wake_word_id else None
                listened = audio.iterate(replay=attempt.index > 0)
                try:
                    # A listener stays open while the microphone listens: no
                    # request waiting on an answer, so not counted under way.
                    with _request(attempt.handle, in_flight=False):
                        detection, queued = await async_detect(
                            provider.host,
                            provider.port,
                            listened,
                            WAKE_AUDIO,
                            names=[word.model if word else wake_word_id]
                            if wake_word_id
                            else None,
                            timeouts=Timeouts(
                                first_event=_patience(provider, attempt.last),
                                total=0,
                            ),
                        )
                except WyomingError as err:
                    attempt.give_up(err)
                    continue
                finally:
                    await close_all(listened)
                if detection is None:
                    return None
                name = detection.name or wake_word_id or ""
                found = self.word(name, provider)
                return Detected(
                    name=name,
                    phrase=found.phrase if found else name,
                    timestamp=detection.timestamp,
                    queued=queued,
                )
            return None
        finally:
            await audio.close()
