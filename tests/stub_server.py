"""A Wyoming server in the test's own event loop, for the fast layer.

It answers Describe with a chosen Info and plays a fixed part in requests:
a transcript it was told to return, a tone for any text, no wake word (or,
when told, a wake word in whatever it hears). It
stands in for the real servers only where their speech adds nothing: flows,
pipelines, diagnostics and entity snapshots. It can also stall or fail on
purpose. Everything about speech is tested against the real servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
from functools import partial
import math
import struct
from typing import Any

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    Info,
    TtsProgram,
    TtsVoice,
    WakeModel,
    WakeProgram,
)
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize
from wyoming.wake import Detect, Detection, NotDetected

from scripts.servers.launch import free_port

HOST = "127.0.0.1"
_BY = Attribution(name="tests", url="")


def stt_info(
    program: str = "faster-whisper",
    model: str = "tiny-int8",
    languages: tuple[str, ...] = ("en", "de"),
) -> Info:
    """Describe a speech-to-text server."""
    return Info(
        asr=[
            AsrProgram(
                name=program,
                attribution=_BY,
                installed=True,
                description=program,
                version="1",
                models=[
                    AsrModel(
                        name=model,
                        attribution=_BY,
                        installed=True,
                        description=model,
                        version="1",
                        languages=list(languages),
                    )
                ],
            )
        ]
    )


def tts_info(
    program: str = "piper", voices: tuple[tuple[str, str], ...] = (("joe", "en_US"),)
) -> Info:
    """Describe a text-to-speech server with (voice, language) pairs."""
    return Info(
        tts=[
            TtsProgram(
                name=program,
                attribution=_BY,
                installed=True,
                description=program,
                version="1",
                voices=[
                    TtsVoice(
                        name=name,
                        attribution=_BY,
                        installed=True,
                        description=name,
                        version="1",
                        languages=[language],
                    )
                    for name, language in voices
                ],
            )
        ]
    )


def wake_info(words: tuple[str, ...] = ("alexa", "okay_nabu")) -> Info:
    """Describe a wake word server."""
    return Info(
        wake=[
            WakeProgram(
                name="microwakeword",
                attribution=_BY,
                installed=True,
                description="wake words",
                version="1",
                models=[
                    WakeModel(
                        name=word,
                        attribution=_BY,
                        installed=True,
                        description=word,
                        version="1",
                        languages=["en"],
                        phrase=word.replace("_", " "),
                    )
                    for word in words
                ],
            )
        ]
    )


def tone(seconds: float = 0.5, rate: int = 22050) -> bytes:
    """Return a 440 Hz tone as 16-bit mono PCM."""
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )


@dataclass
class Behaviour:
    """What the stub does with requests; change it while it runs."""

    transcript: str = "Turn on the kitchen light."
    # When set, the transcript of each request's audio (a stand-in that
    # hears as much of a sentence as it was sent).
    heard: Callable[[bytes], str] | None = None
    stall: bool = False
    # Seconds to wait before answering.
    answer_delay: float = 0
    error: str | None = None
    # Hang up after this many audio chunks of a request.
    drop_after_chunks: int | None = None
    requests: list[str] = field(default_factory=list)
    # The data of each Transcribe event.
    transcribes: list[dict[str, Any]] = field(default_factory=list)
    # Per request: the audio bytes received, the text to say.
    audio_received: list[int] = field(default_factory=list)
    # The last request's audio itself.
    last_audio: bytes = b""
    texts: list[str] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    # A wake word server's stand-in for a detector that fires on whatever
    # it hears: "alexa" once this many seconds of 16 kHz audio came in.
    detect_after: float | None = None
    # Seconds the detection waits before it is sent (a busy machine), the
    # audio meanwhile left unread.
    detection_delay: float = 0


class _Handler(AsyncEventHandler):
    def __init__(
        self, info: Info, behaviour: Behaviour, *args: object, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._info = info
        self._behaviour = behaviour
        self._chunks = 0
        self._audio_bytes = 0
        self._audio = bytearray()
        self._detected = False

    async def run(self) -> None:
        """Serve one connection; a client that drops it is no error."""
        with contextlib.suppress(ConnectionError):
            await super().run()

    async def handle_event(self, event: Event) -> bool:
        behaviour = self._behaviour
        if Describe.is_type(event.type):
            await self.write_event(self._info.event())
            return True
        if Transcribe.is_type(event.type):
            behaviour.transcribes.append(dict(event.data or {}))
        if Transcribe.is_type(event.type) or Synthesize.is_type(event.type):
            behaviour.requests.append(event.type)
            if Synthesize.is_type(event.type):
                behaviour.texts.append(str(event.data.get("text", "")))
                return await self._reply(self._speak)
        if AudioChunk.is_type(event.type):
            self._chunks += 1
            self._audio_bytes += len(event.payload or b"")
            self._audio += event.payload or b""
            if (
                self._info.wake
                and behaviour.detect_after is not None
                and len(self._audio) >= behaviour.detect_after * 32000
                and not self._detected
            ):
                self._detected = True
                timestamp = len(self._audio) // 32
                await asyncio.sleep(behaviour.detection_delay)
                await self.write_event(
                    Detection(name="alexa", timestamp=timestamp).event()
                )
            drop = behaviour.drop_after_chunks
            return drop is None or self._chunks < drop
        if AudioStop.is_type(event.type):
            behaviour.audio_received.append(self._audio_bytes)
            behaviour.last_audio = bytes(self._audio)
            return await self._reply(self._transcribe)
        if Detect.is_type(event.type):
            behaviour.requests.append(event.type)
            if behaviour.error is not None:
                await self.write_event(Error(text=behaviour.error).event())
                return False
        return True

    async def _reply(self, answer: object) -> bool:
        behaviour = self._behaviour
        if behaviour.stall:
            # Hold the connection without a word until the stub stops.
            await behaviour.released.wait()
            return False
        if behaviour.error is not None:
            await self.write_event(Error(text=behaviour.error).event())
            return False
        await asyncio.sleep(behaviour.answer_delay)
        await answer()  # type: ignore[operator]
        return True

    async def _speak(self) -> None:
        await self.write_event(AudioStart(rate=22050, width=2, channels=1).event())
        await self.write_event(
            AudioChunk(rate=22050, width=2, channels=1, audio=tone()).event()
        )
        await self.write_event(AudioStop().event())

    async def _transcribe(self) -> None:
        if self._info.wake:
            await self.write_event(NotDetected().event())
            return
        behaviour = self._behaviour
        text = (
            behaviour.transcript
            if behaviour.heard is None
            else behaviour.heard(bytes(self._audio))
        )
        await self.write_event(Transcript(text=text).event())


class StubServer:
    """A Wyoming server on 127.0.0.1 with a fixed Info."""

    def __init__(self, info: Info) -> None:
        """Prepare; start with `async_start`."""
        self.info = info
        self.behaviour = Behaviour()
        self.port = free_port()
        self._server: AsyncServer | None = None

    async def async_start(self) -> StubServer:
        """Listen on its port (again, after a stop)."""
        self._server = AsyncServer.from_uri(f"tcp://{HOST}:{self.port}")
        await self._server.start(partial(_Handler, self.info, self.behaviour))
        return self

    async def async_stop(self) -> None:
        """Stop listening and drop the connections."""
        self.behaviour.released.set()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        self.behaviour.released = asyncio.Event()
