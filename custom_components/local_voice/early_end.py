"""Ending a spoken command as soon as it is whole, and not before.

Home Assistant ends a live command only after a stretch of silence: about
1.3 s after the speaker stops, here. An STT entity gets the audio as it comes
and may answer whenever it is sure, so an assistant's STT watches the audio
itself. At a short pause it transcribes what it has on the side, while the
audio keeps flowing to the main request.

- The STT answers at once only when the local agent matches that transcript
  as a complete command with real, exposed targets (matching only, nothing
  is executed), no longer sentence of the home starts with it (grammar.py),
  it is not protected, and the speaker has not started again. A partial
  sentence ("turn on the ...") does not match, and "turn off the heater" may
  still become "... in 10 minutes", so a pause never cuts a command short.
- Otherwise Home Assistant's own end applies; when the speaker said nothing
  after the last look, the look's transcript is the command's, and the STT
  answers with it at that end instead of waiting for the server to
  transcribe the whole command again.

The voice activity detector is microVAD (pymicro-vad), which Home Assistant
ships for its own pipeline: about 0.13 ms of CPU per 10 ms of audio.
"""

from __future__ import annotations

import array
import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
import contextlib
from dataclasses import dataclass
import logging
import math
import sys
import time
from typing import Any

from pymicro_vad import MicroVad

_LOGGER = logging.getLogger(__name__)

# microVAD takes 10 ms of 16 kHz 16-bit mono audio at a time.
FRAME_BYTES = 320
FRAME_SECONDS = 0.01
SPEECH_PROBABILITY = 0.5
# Frame energy, in dB of full scale: the floor never goes below SILENCE_DB
# (digital silence), rises by NOISE_RISE_DB a frame (3 dB a second) and a
# frame within ABOVE_FLOOR_DB of it is quiet.
FULL_SCALE_POWER = 32768.0**2
SILENCE_DB = -70.0
NOISE_RISE_DB = 0.03
ABOVE_FLOOR_DB = 6.0
# Frames above the floor in a row that count as sound (50 ms): a syllable,
# not a flicker of the noise.
SOUND_RUN = 5
# Silence after speech that makes a pause worth a look.
PAUSE_SECONDS = 0.3
# Sound heard (since the last look) before a pause counts: a cough or a
# click is not a command. Sound, not microVAD's speech: after a wake word
# the audio starts mid-sentence, and microVAD takes most of a second to
# warm up; that speech was heard at all is the pause's own condition.
MIN_SPEECH_SECONDS = 0.3
# Looks per command, at most: each is one transcription on the server.
MAX_TRIALS = 4
# Sound heard while a look was under way that means the speaker went on.
RESUMED_SECONDS = 0.1

# How a command's audio ended, as kept in the assistant's record: early,
# at Home Assistant's end with the transcript of a look already there, or
# at Home Assistant's end with the whole command's transcript.
ENDED_EARLY = "early"
ENDED_READY = "ready"
ENDED_BY_SILENCE = "silence"


class PauseDetector:
    """Follow speech and silence in 16 kHz 16-bit mono audio.

    microVAD says when speech starts, robustly in noise, but its
    probability stays high for about 0.6 s after the last word. So a frame
    also counts as silent when its energy is down at the room's noise floor:
    the floor follows the quietest recent frames down at once and rises
    slowly (NOISE_RISE_DB per frame), so steady noise becomes the floor
    while speech, which comes and goes, does not.
    """

    def __init__(self) -> None:
        """Start with no speech heard."""
        self._vad = MicroVad()
        self._pending = b""
        self.frames = 0
        self.speech_frames = 0
        self._silent_frames = 0
        # Frames above the noise floor, in runs of at least SOUND_RUN.
        self.sound_frames = 0
        self._loud_run = 0
        self._floor_db: float | None = None
        # When (time.time()) the audio with the last sound so far arrived:
        # the end of speech, as a live microphone's listener meets it.
        self.sound_at: float | None = None

    def process(self, audio: bytes) -> None:
        """Take the next piece of audio."""
        audio = self._pending + audio
        whole = len(audio) - len(audio) % FRAME_BYTES
        self._pending = audio[whole:]
        heard = self.sound_frames
        for start in range(0, whole, FRAME_BYTES):
            frame = audio[start : start + FRAME_BYTES]
            probability = self._vad.Process10ms(frame)
            self.frames += 1
            if self._quiet(frame):
                self._loud_run = 0
            else:
                self._loud_run += 1
                if self._loud_run >= SOUND_RUN:
                    self.sound_frames += 1
            if probability > SPEECH_PROBABILITY and self._loud_run:
                self.speech_frames += 1
                self._silent_frames = 0
            elif self._loud_run >= SOUND_RUN:
                # Sound goes on: microVAD is slow to see speech start again.
                self._silent_frames = 0
            else:
                self._silent_frames += 1
        if self.sound_frames != heard:
            self.sound_at = time.time()

    def _quiet(self, frame: bytes) -> bool:
        """Return True when a frame is no louder than the room's noise floor."""
        samples = array.array("h", frame)
        if sys.byteorder == "big":
            samples.byteswap()
        power = math.sumprod(samples, samples) / len(samples)
        level = 10 * math.log10(max(power, 1.0) / FULL_SCALE_POWER)
        floor = self._floor_db
        if floor is None or level < floor:
            floor = level
        else:
            floor += NOISE_RISE_DB
        self._floor_db = floor = max(floor, SILENCE_DB)
        return level < floor + ABOVE_FLOOR_DB

    @property
    def seconds(self) -> float:
        """Return the length of the audio taken."""
        return self.frames * FRAME_SECONDS

    @property
    def pausing(self) -> bool:
        """Return True after PAUSE_SECONDS of silence that followed speech."""
        return (
            self.speech_frames > 0
            and self._silent_frames * FRAME_SECONDS >= PAUSE_SECONDS
        )


@dataclass(frozen=True, slots=True)
class Ending:
    """How one command's audio ended: early or by Home Assistant's silence."""

    how: str
    # Seconds of audio received when the command ended, and how many
    # side transcriptions were made.
    seconds: float
    trials: int
    # For an early end: how long the server took to transcribe the look,
    # and the agent to judge it whole, in ms.
    look_ms: float | None = None
    check_ms: float | None = None
    # When the speech ended (time.time() of the audio with its last sound),
    # if sound was heard at all. Never part of diagnostics: a moment of use.
    speech_end: float | None = None


class EarlyEnd:
    """Watch a command's audio and find the moment it is complete.

    `transcribe` turns the audio so far into text (or None); `complete`
    returns the text to answer with when it is a whole command, else None.
    With `looking` off (the assistant's option) it only records how the
    command ended and when the speech did. `usable`, when given, must accept
    a look's transcript before it stands for the whole command at the end
    of the audio: one the agent does not understand goes to the servers
    after the first (chain.py, by meaning) instead.
    """

    def __init__(
        self,
        transcribe: Callable[[bytes], Awaitable[str | None]],
        complete: Callable[[str], Awaitable[str | None]],
        *,
        looking: bool = True,
        usable: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """Watch nothing yet."""
        self._looking = looking
        self._usable = usable
        self._transcribe = transcribe
        self._complete = complete
        self._detector = PauseDetector()
        self._audio = bytearray()
        self._received = 0
        self._trial: asyncio.Task[None] | None = None
        # Sound frames counted when the last look started.
        self._looked_at = 0
        self.trials = 0
        self._look_ms: float | None = None
        self._check_ms: float | None = None
        loop = asyncio.get_running_loop()
        self.found: asyncio.Future[str] = loop.create_future()
        # The last look's transcript and the sound frames it covered.
        self._heard: tuple[str, int] | None = None
        # Set when Home Assistant ends the command's audio.
        self._stream_done: asyncio.Future[None] = loop.create_future()

    @property
    def seconds(self) -> float:
        """Return the seconds of audio watched."""
        return self._received / (FRAME_BYTES / FRAME_SECONDS)

    async def watch(self, stream: AsyncIterable[bytes]) -> AsyncGenerator[bytes]:
        """Pass the audio on unchanged, looking at each pause on the way."""
        detector = self._detector
        async for chunk in stream:
            self._received += len(chunk)
            detector.process(chunk)
            if not self._looking:
                yield chunk
                continue
            self._audio += chunk
            if (
                self._trial is None
                and not self.found.done()
                and self.trials < MAX_TRIALS
                and detector.pausing
                and (detector.sound_frames - self._looked_at) * FRAME_SECONDS
                >= MIN_SPEECH_SECONDS
            ):
                self._looked_at = detector.sound_frames
                self.trials += 1
                self._trial = asyncio.create_task(
                    self._look(bytes(self._audio), detector.sound_frames),
                    name="local_voice early end",
                )
            yield chunk
        if not self._stream_done.done():
            self._stream_done.set_result(None)

    async def _look(self, audio: bytes, sound_frames: int) -> None:
        """Transcribe the audio so far; answer with it if it is a whole command."""
        try:
            started = time.perf_counter()
            text = await self._transcribe(audio)
            heard = time.perf_counter()
            if not text or self._went_on(sound_frames):
                return  # nothing heard, or the speaker went on meanwhile
            self._heard = (text, sound_frames)
            answer = await self._complete(text)
            if answer and not self._went_on(sound_frames):
                self._look_ms = round((heard - started) * 1000, 1)
                self._check_ms = round((time.perf_counter() - heard) * 1000, 1)
                self.found.set_result(answer)
        except Exception:
            # A look is a shortcut; the command goes on without it.
            _LOGGER.exception("Could not look at a pause in a command")
        finally:
            self._trial = None

    def _ready(self) -> str | None:
        """Return the last look's transcript if the speaker said nothing after it."""
        if self._heard is None:
            return None
        text, sound_frames = self._heard
        return None if self._went_on(sound_frames) else text

    def _went_on(self, sound_frames: int) -> bool:
        """Return True when sound was heard after a look started."""
        resumed = self._detector.sound_frames - sound_frames
        return resumed * FRAME_SECONDS >= RESUMED_SECONDS

    async def async_close(self) -> None:
        """Stop a look still under way."""
        if (trial := self._trial) is not None:
            trial.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trial
        if not self.found.done():
            self.found.cancel()
        if not self._stream_done.done():
            self._stream_done.cancel()

    async def async_run(self, main: Awaitable[str | None]) -> tuple[str | None, Ending]:
        """Return the early answer or the main request's, and how it ended.

        `main` is the transcription of the whole command, reading its audio
        through watch(); it is cancelled when the command ends early.
        """
        request: asyncio.Future[str | None] = asyncio.ensure_future(main)
        waiting: set[asyncio.Future[Any]] = {request, self.found, self._stream_done}
        left_to_end = False
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if self.found.done() and not self.found.cancelled():
                # The answer does not wait for the main request to wind down
                # (closing its connection takes a few ms); it ends by itself.
                request.cancel()
                request.add_done_callback(_retrieve)
                left_to_end = True
                return self.found.result(), Ending(
                    ENDED_EARLY,
                    round(self.seconds, 2),
                    self.trials,
                    self._look_ms,
                    self._check_ms,
                    self._detector.sound_at,
                )
            if not request.done() and self._stream_done.done():
                # Home Assistant ended the command. When nothing was heard
                # after the last look, its transcript is the whole command's:
                # no need to wait for the server to transcribe it all again.
                if (trial := self._trial) is not None:
                    pending: set[asyncio.Future[Any]] = {request, trial}
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                ready = self._ready() if not request.done() else None
                if (
                    ready is not None
                    and self._usable is not None
                    and not await self._usable(ready)
                ):
                    ready = None
                if not request.done() and ready is not None:
                    request.cancel()
                    request.add_done_callback(_retrieve)
                    left_to_end = True
                    return ready, Ending(
                        ENDED_READY,
                        round(self.seconds, 2),
                        self.trials,
                        speech_end=self._detector.sound_at,
                    )
            return await request, Ending(
                ENDED_BY_SILENCE,
                round(self.seconds, 2),
                self.trials,
                speech_end=self._detector.sound_at,
            )
        finally:
            if not request.done() and not left_to_end:
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request
            await self.async_close()


def _retrieve(request: asyncio.Future[str | None]) -> None:
    """Take the outcome of a request that was stopped, so none goes unseen."""
    if not request.cancelled() and (error := request.exception()) is not None:
        _LOGGER.debug("The main request ended with %r after an early end", error)
