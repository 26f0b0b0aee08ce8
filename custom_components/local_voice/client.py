"""Wyoming I/O with explicit time and size limits.

This is the only module that opens sockets. Every conversation with a server is
bounded three ways: the TCP connect, the wait for the first answer after a
request is complete, and the whole exchange. Reads are bounded in size too, since
a server announces the length of what it sends and could announce anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
import contextlib
from dataclasses import dataclass
import json
import re
from types import TracebackType
from typing import Any, Self

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

from .info import InvalidInfoError, parse_info

MAX_HEADER_BYTES = 64 * 1024
MAX_DATA_BYTES = 4 * 1024 * 1024
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# All the audio of one reply: about 25 minutes of 22 kHz speech.
MAX_REPLY_AUDIO_BYTES = 64 * 1024 * 1024
# Events that do not move an exchange forward (unknown types, other wake
# words); a server that sends more is flooding.
MAX_IGNORED_EVENTS = 1000
# How much of a server's own error text is kept and logged.
MAX_ERROR_TEXT = 200

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
        """Keep the start of the server's own words, printable only."""
        text = _printable(text)
        code = _printable(code) if code else None
        super().__init__(f"{text} ({code})" if code else text)
        self.text = text
        self.code = code


class TextSourceError(Exception):
    """The text being streamed to a server failed: not the server's fault."""


def _printable(text: object) -> str:
    """Return at most MAX_ERROR_TEXT printable characters of a server's text."""
    cleaned = "".join(c if c.isprintable() else " " for c in str(text))
    if len(cleaned) > MAX_ERROR_TEXT:
        return cleaned[:MAX_ERROR_TEXT] + "…"
    return cleaned


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for each part of an exchange."""

    connect: float = 3.0
    first_event: float = 15.0
    total: float = 120.0


DESCRIBE_TIMEOUTS = Timeouts(connect=3.0, first_event=5.0, total=8.0)
# Scanning this host's usual ports while the first form waits: a local server
# answers Describe in milliseconds, so a silent one is not waited on long.
SCAN_TIMEOUTS = Timeouts(connect=1.0, first_event=2.0, total=3.0)


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
        """Close the socket, whatever happened.

        After a failure the connection is aborted: a server that stopped
        reading would otherwise keep the socket open while unsent data waits.
        """
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        if exc is not None:
            writer.transport.abort()
            return
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1):
                await writer.wait_closed()

    async def write(self, event: Event) -> None:
        """Send one event; a server that stops reading is given up on."""
        if self._writer is None:
            raise WyomingError("not connected")
        try:
            async with asyncio.timeout(self.timeouts.first_event):
                await async_write_event(event, self._writer)
        except TimeoutError as err:
            raise ServerTimeoutError(
                f"{self.host}:{self.port} stopped reading for "
                f"{self.timeouts.first_event:g} s"
            ) from err
        except OSError as err:
            raise WyomingError(f"connection lost while sending: {err}") from err

    async def read(self, wait: float | None = None) -> Event:
        """Read one event; raise on close, bad input, or `wait` seconds of silence.

        `wait` bounds each stretch without a byte, not the whole event: a
        server that sends a long reply slowly is alive, one that stops is not.
        """
        if self._reader is None:
            raise WyomingError("not connected")
        reader = self._reader
        try:
            line = await self._within(reader.readline(), wait)
        except (ValueError, asyncio.LimitOverrunError) as err:
            raise ProtocolError("event header too long") from err
        if not line:
            raise WyomingError("the server closed the connection")
        try:
            header = json.loads(line)
        except (ValueError, RecursionError) as err:
            raise ProtocolError("event header is not JSON") from err
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise ProtocolError("event header has no type")
        data = header.get("data") or {}
        if not isinstance(data, dict):
            raise ProtocolError("event data is not an object")
        data_length = _length(header, "data_length", MAX_DATA_BYTES)
        payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
        if data_length:
            try:
                extra = json.loads(await self._read_exactly(data_length, wait))
            except (ValueError, RecursionError) as err:
                raise ProtocolError("event data is not JSON") from err
            if not isinstance(extra, dict):
                raise ProtocolError("event data is not an object")
            data.update(extra)
        payload = (
            await self._read_exactly(payload_length, wait) if payload_length else None
        )
        return Event(type=header["type"], data=data, payload=payload)

    async def _within[T](self, read: Awaitable[T], wait: float | None) -> T:
        """Await one read of the socket, bounded by `wait` seconds."""
        try:
            async with asyncio.timeout(wait):
                return await read
        except TimeoutError as err:
            raise ServerTimeoutError(
                f"{self.host}:{self.port} sent nothing for {wait:g} s"
            ) from err
        except OSError as err:
            raise WyomingError(f"connection lost: {err}") from err

    async def _read_exactly(self, length: int, wait: float | None) -> bytes:
        """Read `length` bytes, however slowly they come, while they keep coming."""
        assert self._reader is not None
        parts: list[bytes] = []
        remaining = length
        while remaining:
            part = await self._within(self._reader.read(min(remaining, 65536)), wait)
            if not part:
                raise WyomingError("the server closed the connection mid-event")
            parts.append(part)
            remaining -= len(part)
        return b"".join(parts)


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
        text, code = event.data.get("text"), event.data.get("code")
        raise ServerError(
            text if isinstance(text, str) else "error",
            code if isinstance(code, str) else None,
        )


def _transcript_text(event: Event) -> str:
    """Return a Transcript's text, checked."""
    text = event.data.get("text")
    if not isinstance(text, str):
        raise ProtocolError("transcript without text")
    return text.strip()


def _int_field(data: dict[str, object], key: str, low: int, high: int) -> int:
    value = data.get(key)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not low <= value <= high
    ):
        raise ProtocolError(f"invalid audio {key}")
    return value


def _audio_chunk(event: Event) -> AudioChunk:
    """Return an AudioChunk with a sane format; its audio is the payload."""
    data = event.data
    width = _int_field(data, "width", 1, 4)
    channels = _int_field(data, "channels", 1, 8)
    audio = event.payload or b""
    if len(audio) % (width * channels):
        raise ProtocolError("audio chunk cut inside a sample")
    return AudioChunk(
        rate=_int_field(data, "rate", 1000, 384000),
        width=width,
        channels=channels,
        audio=audio,
    )


def _detection(event: Event) -> Detection:
    """Return a Detection with its name (version suffix removed), checked."""
    name = event.data.get("name")
    timestamp = event.data.get("timestamp")
    if name is not None and not isinstance(name, str):
        raise ProtocolError("detection name is not text")
    if timestamp is not None and (
        not isinstance(timestamp, int) or isinstance(timestamp, bool)
    ):
        raise ProtocolError("detection timestamp is not a number")
    return Detection(
        name=normalize_model_name(name) if name else None, timestamp=timestamp
    )


class _Flood:
    """Count the events that do not move an exchange forward."""

    def __init__(self) -> None:
        self.count = 0

    def ignore(self) -> None:
        self.count += 1
        if self.count > MAX_IGNORED_EVENTS:
            raise ProtocolError(
                f"more than {MAX_IGNORED_EVENTS} events that answer nothing"
            )


async def _reply(conn: Connection, wanted: Callable[[str], bool], wait: float) -> Event:
    """Return the first event of the wanted type; raise on an Error or a flood."""
    flood = _Flood()
    while True:
        event = await conn.read(wait)
        _raise_if_error(event)
        if wanted(event.type):
            return event
        flood.ignore()


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
            event = await _reply(conn, Info.is_type, timeouts.first_event)
            try:
                return parse_info(event.data)
            except InvalidInfoError as err:
                raise ProtocolError(_printable(err)) from err
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
    names: Sequence[str] = (),
    terms: Sequence[str] = (),
    prompt: str | None = None,
) -> str:
    """Stream audio to a speech-to-text server and return its transcript.

    `names` and `terms` are the home's vocabulary for servers that take it
    (Wyoming 1.10's transcript_names and transcript_terms); others ignore it.
    `prompt` goes in the request's context as `initial_prompt`, which some
    Whisper servers hand to the model.
    """
    try:
        async with (
            asyncio.timeout(timeouts.total),
            Connection(host, port, timeouts) as conn,
        ):
            await conn.write(
                Transcribe(
                    name=model,
                    language=language,
                    transcript_names=list(names) or None,
                    transcript_terms=list(terms) or None,
                    context={"initial_prompt": prompt} if prompt else None,
                ).event()
            )
            await conn.write(AudioStart(**_format_fields(audio_format)).event())
            async for chunk in audio:
                if chunk:
                    await conn.write(
                        AudioChunk(audio=chunk, **_format_fields(audio_format)).event()
                    )
            await conn.write(AudioStop().event())
            event = await _reply(conn, Transcript.is_type, timeouts.first_event)
            return _transcript_text(event)
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

    The server must answer within `timeouts.first_event` of the last text it
    was given; while the text source itself is quiet (an agent still
    thinking), only the total bound runs. The bounds are checked around each
    read rather than across the yields, so the caller's own awaits are never
    cancelled by them. A failing text source raises TextSourceError.
    """
    synth_voice = (
        SynthesizeVoice(name=voice, speaker=speaker, language=language)
        if voice or language
        else None
    )
    streaming = not isinstance(text, str)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total
    async with Connection(host, port, timeouts) as conn:
        sender: asyncio.Task[None] | None = None
        read: asyncio.Task[Event] | None = None
        if isinstance(text, str):
            await conn.write(Synthesize(text=text, voice=synth_voice).event())
        else:
            sender = asyncio.create_task(
                _send_text_stream(conn, text, synth_voice),
                name="local_voice synthesize sender",
            )
        try:
            flood = _Flood()
            audio_bytes = 0
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ServerTimeoutError(
                        f"{host}:{port} did not synthesize in {timeouts.total:g} s"
                    )
                text_pending = sender is not None and not sender.done()
                wait = (
                    remaining if text_pending else min(timeouts.first_event, remaining)
                )
                if read is None:
                    read = asyncio.create_task(
                        conn.read(), name="local_voice synthesize read"
                    )
                waiting: set[asyncio.Task[Any]] = {read}
                if text_pending and sender is not None:
                    waiting.add(sender)
                await asyncio.wait(
                    waiting, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if sender is not None and sender.done() and not sender.cancelled():
                    if (failure := sender.exception()) is not None:
                        if isinstance(failure, WyomingError):
                            raise failure
                        raise TextSourceError(str(failure)) from failure
                if not read.done():
                    if text_pending:
                        continue
                    raise ServerTimeoutError(
                        f"{host}:{port} sent nothing for {wait:g} s"
                    )
                event, read = read.result(), None
                _raise_if_error(event)
                if AudioChunk.is_type(event.type):
                    chunk = _audio_chunk(event)
                    audio_bytes += len(chunk.audio)
                    if audio_bytes > MAX_REPLY_AUDIO_BYTES:
                        raise ProtocolError(
                            f"more than {MAX_REPLY_AUDIO_BYTES} bytes of audio"
                        )
                    yield chunk
                elif (streaming and SynthesizeStopped.is_type(event.type)) or (
                    not streaming and AudioStop.is_type(event.type)
                ):
                    return
                elif not (
                    AudioStart.is_type(event.type) or AudioStop.is_type(event.type)
                ):
                    flood.ignore()
        finally:
            await _finish(read, sender)


async def _finish(*tasks: asyncio.Task[Any] | None, cancel: bool = True) -> None:
    """Let helper tasks end (cancelled, unless told) and read their outcome.

    Waiting with asyncio.wait keeps a cancellation of the caller itself
    going; reading the outcome keeps "exception was never retrieved" out of
    the log.
    """
    pending = [task for task in tasks if task is not None]
    if cancel:
        for task in pending:
            task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled():
            task.exception()


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
    A detection of another wake word than those in `names` is ignored.
    """
    chunks = aiter(audio)
    total = timeouts.total or None
    wanted = {normalize_model_name(n) for n in names} if names else None
    flood = _Flood()
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
                        detection = _detection(event)
                        if wanted is None or detection.name in wanted:
                            queued = (
                                []
                                if audio_done
                                else [c for c in [await next_chunk] if c]
                            )
                            return detection, queued
                        # Another wake word than the one listened for.
                        flood.ignore()
                    elif NotDetected.is_type(event.type):
                        return None, []
                    else:
                        flood.ignore()
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
        # Let the pending read of the shared stream finish rather than cancel
        # it, unless this task itself is being cancelled. Both are told before
        # the first wait, which a second cancellation may cut short.
        current = asyncio.current_task()
        cancelled = current is not None and current.cancelling() > 0
        if read is not None:
            read.cancel()
        if cancelled:
            next_chunk.cancel()
        await _finish(read, next_chunk, cancel=False)
