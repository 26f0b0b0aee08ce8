"""Wyoming I/O with explicit time and size limits.

This is the only module that opens sockets. Every conversation with a server is
bounded three ways: the TCP connect, the wait for the first answer after a
request is complete, and the whole exchange. Reads are bounded in size too, since
a server announces the length of what it sends and could announce anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
import contextlib
from dataclasses import dataclass
import json
import re
from types import TracebackType
from typing import Self

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioFormat, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)
from wyoming.wake import Detect, Detection, NotDetected

MAX_HEADER_BYTES = 64 * 1024
MAX_DATA_BYTES = 4 * 1024 * 1024
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024

# Model names such as "alexa_v0.1" (openWakeWord) carry a version suffix.
_VERSION_SUFFIX = re.compile(r"_v\d+(\.\d+)*$")


class WyomingError(Exception):
    """A Wyoming exchange failed."""


class CannotConnectError(WyomingError):
    """The server refused, is unreachable, or did not accept in time."""


class ServerTimeoutError(WyomingError):
    """The server did not answer in time."""


class ProtocolError(WyomingError):
    """The server sent something that is not a valid Wyoming event."""


class ServerError(WyomingError):
    """The server answered with an Error event."""

    def __init__(self, text: str, code: str | None) -> None:
        """Keep the server's own words."""
        super().__init__(f"{text} ({code})" if code else text)
        self.text = text
        self.code = code


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for each part of an exchange."""

    connect: float = 3.0
    first_event: float = 15.0
    total: float = 120.0


DESCRIBE_TIMEOUTS = Timeouts(connect=3.0, first_event=5.0, total=8.0)


def normalize_model_name(name: str) -> str:
    """Return a wake word model name without its version suffix."""
    return _VERSION_SUFFIX.sub("", name)


class Connection:
    """One TCP conversation with a Wyoming server."""

    def __init__(self, host: str, port: int, timeouts: Timeouts) -> None:
        """Prepare, without connecting."""
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        """Connect within the connect timeout."""
        try:
            async with asyncio.timeout(self.timeouts.connect):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, limit=MAX_HEADER_BYTES
                )
        except TimeoutError as err:
            raise CannotConnectError(
                f"{self.host}:{self.port} did not accept within "
                f"{self.timeouts.connect} s"
            ) from err
        except OSError as err:
            raise CannotConnectError(f"{self.host}:{self.port}: {err}") from err
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the socket, whatever happened."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1):
                await writer.wait_closed()

    async def write(self, event: Event) -> None:
        """Send one event."""
        if self._writer is None:
            raise WyomingError("not connected")
        try:
            await async_write_event(event, self._writer)
        except OSError as err:
            raise WyomingError(f"connection lost while sending: {err}") from err

    async def read(self, wait: float | None = None) -> Event:
        """Read one event within `wait` seconds; raise on close or bad input."""
        try:
            async with asyncio.timeout(wait):
                return await self._read_event()
        except TimeoutError as err:
            raise ServerTimeoutError(
                f"{self.host}:{self.port} sent nothing for {wait} s"
            ) from err

    async def _read_event(self) -> Event:
        if self._reader is None:
            raise WyomingError("not connected")
        reader = self._reader
        try:
            line = await reader.readline()
        except (ValueError, asyncio.LimitOverrunError) as err:
            raise ProtocolError("event header too long") from err
        except OSError as err:
            raise WyomingError(f"connection lost: {err}") from err
        if not line:
            raise WyomingError("the server closed the connection")
        try:
            header = json.loads(line)
        except ValueError as err:
            raise ProtocolError("event header is not JSON") from err
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise ProtocolError("event header has no type")
        data = header.get("data") or {}
        if not isinstance(data, dict):
            raise ProtocolError("event data is not an object")
        data_length = _length(header, "data_length", MAX_DATA_BYTES)
        payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
        try:
            if data_length:
                extra = json.loads(await reader.readexactly(data_length))
                if not isinstance(extra, dict):
                    raise ProtocolError("event data is not an object")
                data.update(extra)
            payload = (
                await reader.readexactly(payload_length) if payload_length else None
            )
        except asyncio.IncompleteReadError as err:
            raise WyomingError("the server closed the connection mid-event") from err
        except ValueError as err:
            raise ProtocolError("event data is not JSON") from err
        except OSError as err:
            raise WyomingError(f"connection lost: {err}") from err
        return Event(type=header["type"], data=data, payload=payload)


def _length(header: dict[str, object], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"invalid {key}")
    if value > limit:
        raise ProtocolError(f"{key} {value} exceeds the limit of {limit} bytes")
    return value


def _format_fields(audio_format: AudioFormat) -> dict[str, int]:
    """Return the rate, width and channels that audio events carry."""
    return {
        "rate": audio_format.rate,
        "width": audio_format.width,
        "channels": audio_format.channels,
    }


def _raise_if_error(event: Event) -> None:
    if Error.is_type(event.type):
        error = Error.from_event(event)
        raise ServerError(error.text, error.code)


async def async_describe(
    host: str, port: int, timeouts: Timeouts = DESCRIBE_TIMEOUTS
) -> Info:
    """Ask a server what it offers."""
    try:
        async with (
            asyncio.timeout(timeouts.total),
            Connection(host, port, timeouts) as conn,
        ):
            await conn.write(Describe().event())
            while True:
                event = await conn.read(timeouts.first_event)
                _raise_if_error(event)
                if Info.is_type(event.type):
                    try:
                        return Info.from_event(event)
                    except (KeyError, TypeError, ValueError) as err:
                        raise ProtocolError(f"invalid info: {err}") from err
    except TimeoutError as err:
        raise ServerTimeoutError(
            f"{host}:{port} did not describe itself in time"
        ) from err


async def async_transcribe(
    host: str,
    port: int,
    audio: AsyncIterable[bytes],
    audio_format: AudioFormat,
    *,
    language: str | None,
    model: str | None,
    timeouts: Timeouts = Timeouts(),
) -> str:
    """Stream audio to a speech-to-text server and return its transcript."""
    try:
        async with (
            asyncio.timeout(timeouts.total),
            Connection(host, port, timeouts) as conn,
        ):
            await conn.write(Transcribe(name=model, language=language).event())
            await conn.write(AudioStart(**_format_fields(audio_format)).event())
            async for chunk in audio:
                if chunk:
                    await conn.write(
                        AudioChunk(audio=chunk, **_format_fields(audio_format)).event()
                    )
            await conn.write(AudioStop().event())
            while True:
                event = await conn.read(timeouts.first_event)
                _raise_if_error(event)
                if Transcript.is_type(event.type):
                    return Transcript.from_event(event).text.strip()
    except TimeoutError as err:
        raise ServerTimeoutError(f"{host}:{port} did not transcribe in time") from err


async def async_synthesize(
    host: str,
    port: int,
    text: str | AsyncIterable[str],
    *,
    voice: str | None,
    speaker: str | None = None,
    language: str | None = None,
    timeouts: Timeouts = Timeouts(),
) -> AsyncIterator[AudioChunk]:
    """Yield the audio a text-to-speech server makes of a text.

    A string is sent as one Synthesize request. An async iterable of strings is
    streamed with SynthesizeStart/Chunk/Stop while the audio comes back; only use
    it with servers that say they support synthesize streaming.
    """
    synth_voice = (
        SynthesizeVoice(name=voice, speaker=speaker, language=language)
        if voice or language
        else None
    )
    streaming = not isinstance(text, str)
    try:
        async with (
            asyncio.timeout(timeouts.total),
            Connection(host, port, timeouts) as conn,
        ):
            sender: asyncio.Task[None] | None = None
            if isinstance(text, str):
                await conn.write(Synthesize(text=text, voice=synth_voice).event())
            else:
                sender = asyncio.create_task(
                    _send_text_stream(conn, text, synth_voice),
                    name="local_voice synthesize sender",
                )
            try:
                first = True
                while True:
                    # The first audio of a streamed text waits on the text itself.
                    wait = None if (first and streaming) else timeouts.first_event
                    event = await conn.read(wait)
                    _raise_if_error(event)
                    if AudioChunk.is_type(event.type):
                        first = False
                        yield AudioChunk.from_event(event)
                    elif (streaming and SynthesizeStopped.is_type(event.type)) or (
                        not streaming and AudioStop.is_type(event.type)
                    ):
                        break
                if sender is not None:
                    await sender
            finally:
                if sender is not None and not sender.done():
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, WyomingError):
                        await sender
    except TimeoutError as err:
        raise ServerTimeoutError(f"{host}:{port} did not synthesize in time") from err


async def _send_text_stream(
    conn: Connection, text: AsyncIterable[str], voice: SynthesizeVoice | None
) -> None:
    await conn.write(SynthesizeStart(voice=voice).event())
    async for part in text:
        if part:
            await conn.write(SynthesizeChunk(text=part).event())
    await conn.write(SynthesizeStop().event())


async def async_detect(
    host: str,
    port: int,
    audio: AsyncIterable[tuple[bytes, int]],
    audio_format: AudioFormat,
    *,
    names: list[str] | None,
    timeouts: Timeouts = Timeouts(total=0),
) -> tuple[Detection | None, list[tuple[bytes, int]]]:
    """Stream audio to a wake word server until it detects one of `names`.

    Returns the first Detection, its model name stripped of any version suffix,
    or None when the audio ends without one; and the audio chunks that were
    taken from `audio` but not sent. The audio iterator is never cancelled while
    it waits for a chunk, since the same stream goes on to speech-to-text.
    `timeouts.total` of 0 means no limit: a satellite may listen for hours.
    """
    chunks = aiter(audio)
    total = timeouts.total or None
    next_chunk: asyncio.Task[tuple[bytes, int] | None] = asyncio.create_task(
        anext(chunks, None), name="local_voice wake word audio"
    )
    read: asyncio.Task[Event] | None = None
    try:
        async with asyncio.timeout(total), Connection(host, port, timeouts) as conn:
            await conn.write(Detect(names=names).event())
            await conn.write(AudioStart(**_format_fields(audio_format)).event())
            read = asyncio.create_task(conn.read(), name="local_voice wake word read")
            audio_done = False
            last_timestamp = 0
            while True:
                if audio_done:
                    # All audio is sent: the verdict must come soon.
                    await asyncio.wait_for(asyncio.shield(read), timeouts.first_event)
                else:
                    await asyncio.wait(
                        {read, next_chunk}, return_when=asyncio.FIRST_COMPLETED
                    )
                if read.done():
                    event = read.result()
                    _raise_if_error(event)
                    if Detection.is_type(event.type):
                        detection = Detection.from_event(event)
                        if detection.name:
                            detection.name = normalize_model_name(detection.name)
                        queued = (
                            [] if audio_done else [c for c in [await next_chunk] if c]
                        )
                        return detection, queued
                    if NotDetected.is_type(event.type):
                        return None, []
                    read = asyncio.create_task(
                        conn.read(), name="local_voice wake word read"
                    )
                if not audio_done and next_chunk.done():
                    item = next_chunk.result()
                    if item is None:
                        audio_done = True
                        await conn.write(AudioStop(timestamp=last_timestamp).event())
                        continue
                    chunk, last_timestamp = item
                    await conn.write(
                        AudioChunk(
                            audio=chunk,
                            timestamp=last_timestamp,
                            **_format_fields(audio_format),
                        ).event()
                    )
                    next_chunk = asyncio.create_task(
                        anext(chunks, None), name="local_voice wake word audio"
                    )
    except TimeoutError as err:
        raise ServerTimeoutError(f"{host}:{port} did not answer in time") from err
    finally:
        if read is not None and not read.done():
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, WyomingError):
                await read
        if not next_chunk.done():
            # Let the pending read of the shared stream finish rather than
            # cancel it, unless this task itself is being cancelled.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                next_chunk.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await next_chunk
