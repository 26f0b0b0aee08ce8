"""A second, local check of each wake, and a record of the wakes.

A wake word server says "Alexa" on a frame of audio; a television, a name
like "Alexis" or "Alaska" can say it too. When an assistant's wake word
entity hears a detection it reports it at once (a real wake is never slower)
and, while the command is being spoken, the assistant's own speech-to-text
transcribes the two seconds before the detection and the first moments
after it. Unless the
wake word, or a word that sounds close enough to it, is heard there, the run
ends quietly: the speech-to-text stops listening and the agent neither acts
nor speaks (stt.py, conversation.py).

A detector fires only after a pause that follows the wake word, 0.16 to
0.5 s after the word ends, and Home Assistant hands speech-to-text only the
audio after the detection: a command said without a breath has begun by
then, and its first word would be lost. The wake word entity keeps the last
seconds of audio; when speech began again after that pause and before the
detection, speech-to-text gets the audio from there (`KeptAudio.onset`), so
the command arrives whole and the wake word stays out of it.

Wakes are counted per assistant: all, dropped by the check, and those that
led to no command; the last few are kept for diagnostics, never with audio,
and with what was heard only when the user keeps command text.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
import logging
import math
import re
import time
from typing import Any

from homeassistant.core import HomeAssistant
from rapidfuzz import fuzz

from .names import words

_LOGGER = logging.getLogger(__name__)

# The `wake_check` setting: how sure the check must be that it heard the
# wake word.
WAKE_CHECK_OFF = "off"
WAKE_CHECK_NORMAL = "normal"
WAKE_CHECK_STRICT = "strict"
WAKE_CHECKS = (WAKE_CHECK_OFF, WAKE_CHECK_NORMAL, WAKE_CHECK_STRICT)
# Likeness (0..1, spelling and sound) of the closest words heard to the wake
# phrase that passes. Normal lets through what a small model writes for a
# real "Alexa" ("Alexia", "Lexa", "Elexa") and drops "Alexis", "Alaska",
# "Alexander", "election"; strict asks for the wake word itself.
PASS_SCORE = {WAKE_CHECK_NORMAL: 0.75, WAKE_CHECK_STRICT: 0.9}
# A word this like the phrase near the start of a command's transcript is
# the wake word, and is taken off.
STRIP_SCORE = 0.85
# Where the wake word may stand in a transcript.
STRIP_WITHIN = 2

# Audio the wake word entity keeps, the part before the detection the
# command's speech-to-text gets (the word itself and the detector's delay,
# 0.2 to 0.5 s after the word ends), and the part the check transcribes.
KEEP_SECONDS = 3.0
# Where the command starts when it starts before the detection: after the
# last pause of at least PAUSE_SECONDS within PAUSE_WINDOW before the
# detection, at most ONSET_WITHIN before it (a stop inside "Alexa" is shorter), quiet meaning below
# QUIET_RATIO times the kept audio's floor (its tenth percentile), and never
# below QUIET_FLOOR (digital silence); from ONSET_MARGIN before the speech.
PAUSE_SECONDS = 0.1
PAUSE_WINDOW = 0.8
# The command can only start after the wake word ends, which detectors hear
# 0.16 to 0.5 s later.
ONSET_WITHIN = 0.45
QUIET_RATIO = 3.0
QUIET_FLOOR = 200.0
ONSET_MARGIN = 0.05
CHECK_SECONDS = 2.0
# And the part after it: a small model hears a word far better with a little
# of what follows (alone, "Alexa" came back as "I'll see you next time.").
CHECK_AFTER_SECONDS = 0.7
# How long the agent waits for a check that is still under way.
CHECK_WAIT = 3.0

RECENT_WAKES = 10
# Conversations whose wake is remembered (one per satellite in use).
WAKES_KEPT = 32

# Outcomes of a wake.
PASSED = "passed"
DROPPED = "dropped"
UNCHECKED = "unchecked"
COMMAND = "command"
NO_COMMAND = "no_command"

# What the speech-to-text reports for a wake the check dropped: some text,
# since none is an error Home Assistant reports (and that stops an
# always-streaming satellite); the agent says nothing to it.
QUIET = "…"

# The event each counted step of a wake fires (the sensors follow it).
EVENT_WAKE = "local_voice_wake"
DETECTED = "detected"

_LETTERS = re.compile(r"[^a-z]")


def _letters(text: str) -> str:
    return _LETTERS.sub("", text.lower())


def _likeness(heard: list[str], phrase: list[str]) -> float:
    """Return how alike two runs of words are in spelling, 0..1.

    Spelling, not sound: a phonetic code makes "Alexis" and "Alexa" nearly
    the same, and a small model spells a real "Alexa" close to the word.
    """
    if not heard or not phrase:
        return 0.0
    return fuzz.ratio(_letters("".join(heard)), _letters("".join(phrase))) / 100


def _windows(
    heard: list[str], phrase: list[str], starts: range
) -> list[tuple[int, int, float]]:
    """Return each run of heard words (start, end) and its likeness to the phrase."""
    found = []
    for start in starts:
        for width in range(1, len(phrase) + 2):
            end = start + width
            if end > len(heard):
                break
            found.append((start, end, _likeness(heard[start:end], phrase)))
    return found


def wake_word_score(text: str, phrase: str) -> float:
    """Return how close the closest words of `text` are to the wake phrase."""
    heard, wanted = words(text), words(phrase)
    return max(
        (score for _, _, score in _windows(heard, wanted, range(len(heard)))),
        default=0.0,
    )


def strip_wake_word(text: str, phrase: str) -> str:
    """Return the transcript after the wake word near its start.

    What stands before it (the end of another sentence, a television) goes
    too. A transcript without anything like the wake word near its start
    is returned as it is.
    """
    tokens = list(re.finditer(r"\S+", text))
    heard = [_letters(t.group()) for t in tokens]
    wanted = words(phrase)
    best: tuple[int, int, float] | None = None
    for start, end, score in _windows(
        heard, wanted, range(min(STRIP_WITHIN, len(heard)))
    ):
        if score >= STRIP_SCORE and (best is None or score > best[2]):
            best = (start, end, score)
    if best is None:
        return text
    rest = text[tokens[best[1] - 1].end() :] if best[1] < len(tokens) else ""
    return rest.lstrip(" ,.!?;:-").strip()


@dataclass(slots=True)
class Verdict:
    """What the check made of a wake.

    `score`: the likeness of the closest words the speech-to-text heard to
    the wake phrase (None: it could not tell). `model`: whether a second wake
    model heard the word (None: none is offered, or it could not tell).
    """

    passed: bool
    score: float | None
    heard: str | None
    milliseconds: int
    model: bool | None = None


# How the two opinions make the verdict (measured with tests/wake_bench.py):
# the speech-to-text's alone, a second model's alone (the speech-to-text's
# where none is offered), either one's yes, or both.
BY_LISTENING = "listening"
BY_MODEL = "model"
BY_EITHER = "either"
BY_BOTH = "both"
WAY = BY_EITHER


def decide(
    score: float | None, need: float, model: bool | None, way: str | None = None
) -> bool | None:
    """Return whether the wake passes; None when nothing could tell."""
    way = way or WAY
    heard = None if score is None else score >= need
    if way == BY_LISTENING or model is None:
        return heard
    if way == BY_MODEL or heard is None:
        return model
    if way == BY_EITHER:
        return heard or model
    return heard and model


async def async_check(
    wake: Wake,
    audio: bytes,
    transcribe: Callable[[bytes], Awaitable[str | None]],
    way: str | None = None,
) -> Verdict | None:
    """Ask a second model where one is offered, and the speech-to-text if need be.

    The second model goes first: it runs on the wake word server, while the
    speech-to-text is the server that is about to transcribe the command.
    The speech-to-text is asked only when its answer could change the
    verdict (by either: the model said no or could not tell; by both: the
    model said yes or could not tell), so a wake the model settles costs
    the command nothing.
    """
    way = way or WAY
    need = wake.need
    assert need is not None
    started = time.monotonic()

    async def listened() -> tuple[float | None, str | None]:
        try:
            heard = await transcribe(audio)
        except Exception:
            _LOGGER.debug("The speech-to-text could not check a wake", exc_info=True)
            return None, None
        if heard is None:
            return None, None
        return wake_word_score(heard, wake.phrase), heard.strip()

    model: bool | None = None
    if wake.confirm is not None and way != BY_LISTENING:
        try:
            model = await wake.confirm(audio)
        except Exception:
            _LOGGER.debug("A second wake model could not check a wake", exc_info=True)
    settled = (
        (way == BY_MODEL and model is not None)
        or (way == BY_EITHER and model is True)
        or (way == BY_BOTH and model is False)
    )
    score, heard = (None, None) if settled else await listened()
    passed = decide(score, need, model, way)
    if passed is None:
        return None
    return Verdict(
        passed=passed,
        score=None if score is None else round(score, 3),
        heard=heard,
        milliseconds=round((time.monotonic() - started) * 1000),
        model=model,
    )


@dataclass(slots=True)
class Wake:
    """One detection of an assistant's wake word and what became of it."""

    phrase: str
    at: float  # time.time()
    detector_ms: int | None  # the detection's place in the audio
    strictness: str
    lead_seconds: float = 0.0
    # The check's audio up to the detection, and the likeness it needs (None:
    # no check); the speech-to-text adds what follows and starts it.
    before: bytes = b""
    queued_bytes: int = 0
    need: float | None = None
    # A second wake model's look at the audio (None: none is offered).
    confirm: Callable[[bytes], Awaitable[bool]] | None = None
    check: asyncio.Task[Verdict | None] | None = None
    verdict: Verdict | None = None
    outcome: str = UNCHECKED
    settled: bool = False
    # The agent stopped waiting for the check and went on: a verdict that
    # comes later is recorded, but drops nothing.
    waited_out: bool = False

    def dropped(self) -> bool:
        """Return True when the check found no wake word in time."""
        return (
            self.verdict is not None and not self.verdict.passed and not self.waited_out
        )

    async def async_verdict(self, within: float = CHECK_WAIT) -> Verdict | None:
        """Wait (a bounded time) for the check; None when there is none yet."""
        if self.check is None:
            return self.verdict
        if not self.check.done():
            await asyncio.wait({self.check}, timeout=within)
        if not self.check.done():
            self.waited_out = True
            return None
        return self.verdict


@dataclass
class WakeLog:
    """An assistant's wakes: counts, the recent ones, each conversation's last."""

    hass: HomeAssistant | None = None
    assistant_id: str = ""
    counts: dict[str, int] = field(
        default_factory=lambda: {DETECTED: 0, DROPPED: 0, NO_COMMAND: 0}
    )
    recent: deque[Wake] = field(default_factory=lambda: deque(maxlen=RECENT_WAKES))
    _by_conversation: OrderedDict[str, Wake] = field(default_factory=OrderedDict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def _count(self, step: str) -> None:
        self.counts[step] = self.counts.get(step, 0) + 1
        if self.hass is None:
            return
        self.hass.bus.async_fire(
            EVENT_WAKE, {"assistant_id": self.assistant_id, "step": step}
        )

    def start(self, conversation_id: str | None, wake: Wake) -> Wake:
        """Record a detection."""
        self._count(DETECTED)
        self.recent.append(wake)
        if conversation_id is not None:
            self._by_conversation.pop(conversation_id, None)
            self._by_conversation[conversation_id] = wake
            while len(self._by_conversation) > WAKES_KEPT:
                self._by_conversation.popitem(last=False)
        return wake

    def check(
        self, wake: Wake, check: Callable[[], Awaitable[Verdict | None]]
    ) -> asyncio.Task[Verdict | None]:
        """Start a wake's check."""
        work = self._async_check(wake, check)
        wake.check = (
            asyncio.create_task(work)
            if self.hass is None
            else self.hass.async_create_background_task(work, "local_voice wake check")
        )
        self._tasks.add(wake.check)
        wake.check.add_done_callback(self._tasks.discard)
        return wake.check

    async def _async_check(
        self, wake: Wake, check: Callable[[], Awaitable[Verdict | None]]
    ) -> Verdict | None:
        try:
            verdict = await check()
        except Exception:
            # A check that fails says nothing: the wake stands.
            _LOGGER.debug("The wake check failed", exc_info=True)
            verdict = None
        wake.verdict = verdict
        if verdict is not None:
            _LOGGER.debug(
                "The wake check (heard %s, second model %s) in %d ms: %s%s",
                verdict.score,
                verdict.model,
                verdict.milliseconds,
                "passed" if verdict.passed else "dropped",
                ", too late to drop it" if wake.waited_out else "",
            )
            if wake.dropped():
                wake.outcome = DROPPED
                self._count(DROPPED)
            elif wake.outcome == UNCHECKED:
                wake.outcome = PASSED
        return verdict

    def of(self, conversation_id: str | None) -> Wake | None:
        """Return the conversation's last wake not yet settled."""
        if conversation_id is None:
            return None
        wake = self._by_conversation.get(conversation_id)
        return None if wake is None or wake.settled else wake

    def settle(self, conversation_id: str | None, *, command: bool) -> None:
        """Note whether the conversation's wake led to a command."""
        wake = self.of(conversation_id)
        if wake is None:
            return
        wake.settled = True
        if wake.outcome != DROPPED:
            wake.outcome = COMMAND if command else NO_COMMAND
            if not command:
                self._count(NO_COMMAND)

    async def async_stop(self) -> None:
        """Cancel checks under way (the entry unloads)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def report(self, *, with_words: bool) -> dict[str, Any]:
        """Return the counts and the recent wakes for diagnostics."""
        return {
            "count": {
                "wakes": self.counts.get(DETECTED, 0),
                "dropped": self.counts.get(DROPPED, 0),
                "without_command": self.counts.get(NO_COMMAND, 0),
            },
            "recent": [
                {
                    "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(w.at)),
                    "phrase": w.phrase,
                    "detector_ms": w.detector_ms,
                    "strictness": w.strictness,
                    "outcome": w.outcome,
                    "check_score": None if w.verdict is None else w.verdict.score,
                    "second_model": None if w.verdict is None else w.verdict.model,
                    "check_ms": None if w.verdict is None else w.verdict.milliseconds,
                    **(
                        {"heard": None if w.verdict is None else w.verdict.heard}
                        if with_words
                        else {}
                    ),
                }
                for w in self.recent
            ],
        }


class KeptAudio:
    """The last seconds of the audio a wake word listener took, with times."""

    def __init__(self, source: AsyncIterable[tuple[bytes, int]]) -> None:
        """Keep what passes from `source`."""
        self._source = source
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._bytes = 0
        self.last_ms = 0

    async def stream(self) -> AsyncIterator[tuple[bytes, int]]:
        """Yield the source's chunks, keeping the last KEEP_SECONDS of them."""
        limit = int(KEEP_SECONDS * 16000 * 2)
        async for chunk in self._source:
            self._chunks.append(chunk)
            self._bytes += len(chunk[0])
            self.last_ms = chunk[1]
            while self._bytes > limit and len(self._chunks) > 1:
                self._bytes -= len(self._chunks.popleft()[0])
            yield chunk

    def onset(self, at_ms: float) -> float | None:
        """Return where speech began again after the wake word, if it has.

        The wake word ends in a pause (a detector fires only after one); the
        command may start before the detector fires. Of the pauses of at
        least PAUSE_SECONDS that began by the detection, followed by speech
        that starts no earlier than ONSET_WITHIN before it, the longest: the
        one the detector needed, longer than a stop inside a word of the wake
        word or of the command. The time that speech starts, less a margin.
        None when no pause is heard (noise), or when none is followed by
        speech yet: the command is then all that came after the detection.
        """
        frames: list[tuple[int, float]] = []
        for chunk, ms in self._chunks:
            samples = memoryview(chunk[: len(chunk) // 2 * 2]).cast("h")
            step = 160  # 10 ms
            for offset in range(0, len(samples) - step + 1, step):
                frame = samples[offset : offset + step]
                energy = math.sqrt(sum(x * x for x in frame) / step)
                frames.append((ms + offset // 16, energy))
        if not frames:
            return None
        levels = sorted(energy for _, energy in frames)
        floor = levels[len(levels) // 10]
        quiet = max(QUIET_FLOOR, floor * QUIET_RATIO)
        window = [(ms, e) for ms, e in frames if ms >= at_ms - PAUSE_WINDOW * 1000]
        run = 0
        # (the pause's frames, where speech starts again after it)
        best: tuple[int, float] | None = None
        for ms, energy in window:
            if energy < quiet:
                run += 1
                continue
            # Speech after a pause, late enough to follow the wake word
            # (before it, it would be the wake word itself), the pause begun
            # by the detection: the detector fired in it or after it. Audio
            # taken after the detection (a detector that answered late) holds
            # the command's own stops, which are no start.
            if (
                run * 10 >= PAUSE_SECONDS * 1000
                and ms >= at_ms - ONSET_WITHIN * 1000
                and ms - run * 10 <= at_ms
            ):
                best = max(best or (run, ms), (run, ms))
            run = 0
        if best is None:
            return None
        return best[1] - ONSET_MARGIN * 1000

    def since(self, ms: float) -> list[tuple[bytes, int]]:
        """Return the kept chunks that start at `ms` or later."""
        return [c for c in self._chunks if c[1] >= ms]

    def between(self, start_ms: float, end_ms: float) -> bytes:
        """Return the kept audio from `start_ms` up to `end_ms`."""
        return b"".join(c[0] for c in self._chunks if start_ms <= c[1] < end_ms)


def pass_score(strictness: str) -> float | None:
    """Return the likeness the check needs; None when there is no check."""
    return PASS_SCORE.get(strictness)


async def checked(
    stream: AsyncIterable[bytes],
    wake: Wake,
    start: Callable[[bytes], None],
    rate_bytes: int,
) -> AsyncIterator[bytes]:
    """Pass the command's audio on; start the wake's check once it has enough.

    The stream begins with the audio the wake word entity queued (already in
    `wake.before`); CHECK_AFTER_SECONDS of what follows are added to it.
    """
    skip = wake.queued_bytes
    wanted = int(CHECK_AFTER_SECONDS * rate_bytes)
    after = bytearray()
    started = False
    async for chunk in stream:
        if not started:
            taken = chunk[skip:] if skip else chunk
            skip = max(0, skip - len(chunk))
            after += taken
            if len(after) >= wanted:
                started = True
                start(wake.before + bytes(after[:wanted]))
        yield chunk
    if not started:
        start(wake.before + bytes(after))
