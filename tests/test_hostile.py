"""Misbehaving Wyoming servers: every wait is bounded, every reply checked.

Each test runs a small scripted TCP server on 127.0.0.1 that does one wrong
thing, and shows that the client ends the request with a clear WyomingError
within its bound, leaves no socket or task behind, and accepts nothing it
should not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import json
import logging
import time
from typing import Any

import pytest
from wyoming.audio import AudioFormat

from custom_components.local_voice import client
from tests.common import HOST, open_connections

PCM16K = AudioFormat(rate=16000, width=2, channels=1)
FAST = client.Timeouts(connect=1, first_event=0.5, total=5)

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(kind: str, data: dict[str, Any] | None = None, payload: bytes = b"") -> bytes:
    """Return one Wyoming event as it travels on the wire."""
    header: dict[str, Any] = {"type": kind}
    body = b""
    if data is not None:
        body = json.dumps(data).encode()
        header["data_length"] = len(body)
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + body + payload


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """Read one event the client sent; return its header, None at the end."""
    line = await reader.readline()
    if not line:
        return None
    header: dict[str, Any] = json.loads(line)
    for key in ("data_length", "payload_length"):
        if header.get(key):
            await reader.readexactly(header[key])
    return header


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    """Serve `script` on a free port; end every connection afterwards."""
    writers: list[asyncio.StreamWriter] = []
    handlers: list[asyncio.Task[Any]] = []

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writers.append(writer)
        if (task := asyncio.current_task()) is not None:
            handlers.append(task)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await script(reader, writer)

    server = await asyncio.start_server(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in writers:
            writer.transport.abort()
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers)
        server.close()
        await server.wait_closed()


async def _closed(port: int) -> bool:
    """Wait a moment for aborted sockets to close; return True when none is open."""
    for _ in range(20):
        if not open_connections({port}):
            return True
        await asyncio.sleep(0.01)
    return False


async def _speak(
    port: int,
    text: str | AsyncIterator[str],
    timeouts: client.Timeouts = FAST,
    busy: float = 0,
) -> int:
    """Synthesize, like a caller that takes `busy` seconds per chunk; count bytes."""
    received = 0
    async for chunk in client.async_synthesize(
        HOST, port, text, voice=None, timeouts=timeouts
    ):
        received += len(chunk.audio)
        await asyncio.sleep(busy)
    return received


async def _audio(seconds: float = 0.2) -> AsyncIterator[bytes]:
    for _ in range(int(seconds * 100)):
        yield bytes(320)


def _reply_after_first_line(reply: bytes, *, hang_up: bool = False) -> Script:
    """Answer the request with `reply`; then wait, or hang up when asked."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()
        writer.write(reply)
        await writer.drain()
        if hang_up:
            writer.close()
        else:
            await reader.read()

    return script


def _reply_after_audio_stop(reply: bytes) -> Script:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while header := await read_frame(reader):
            if header["type"] == "audio-stop":
                writer.write(reply)
                await writer.drain()

    return script


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps({"type": "info", "data_length": 1 << 40}).encode() + b"\n",
        json.dumps({"type": "audio-chunk", "payload_length": -5}).encode() + b"\n",
        b"{not json}\n",
        b"x" * 100_000 + b"\n",
        json.dumps({"data": {}}).encode() + b"\n",
    ],
    ids=["huge-data", "negative-payload", "not-json", "endless-header", "no-type"],
)
async def test_malformed_frames(socket_enabled: None, reply: bytes) -> None:
    """Lengths and headers are checked before anything is allocated."""
    async with scripted(_reply_after_first_line(reply)) as port:
        with pytest.raises(client.ProtocolError):
            await client.async_describe(HOST, port)


async def test_truncated_frame(socket_enabled: None) -> None:
    """A frame cut short by a hang-up is a lost connection, not a hang."""
    reply = json.dumps({"type": "info", "data_length": 100}).encode() + b"\n{"
    async with scripted(_reply_after_first_line(reply, hang_up=True)) as port:
        with pytest.raises(client.WyomingError, match="mid-event"):
            await client.async_describe(HOST, port, FAST)


async def test_silent_server_times_out(socket_enabled: None) -> None:
    """A server that accepts and never answers is given up on in time.

    This stands in for openWakeWord, which stays silent on an unknown model.
    """
    async with scripted(_never_reads) as port:
        with pytest.raises(client.ServerTimeoutError):
            await client.async_describe(
                HOST, port, client.Timeouts(connect=1, first_event=0.3, total=1)
            )


@pytest.mark.parametrize(
    "info",
    [
        {"asr": "x"},
        {
            "tts": [
                {"name": 5, "attribution": {"name": "", "url": ""}, "installed": True}
            ]
        },
        {
            "asr": [
                {
                    "name": "whisper",
                    "attribution": {"name": "", "url": ""},
                    "installed": True,
                    "models": [
                        {
                            "name": "tiny",
                            "attribution": {"name": "", "url": ""},
                            "installed": True,
                            "languages": [1, 2],
                        }
                    ],
                }
            ]
        },
        {"wake": [None]},
        [],
    ],
    ids=["asr-text", "name-number", "languages-numbers", "program-null", "not-object"],
)
async def test_info_of_the_wrong_shape(socket_enabled: None, info: Any) -> None:
    """An Info that does not fit is refused whole, never half-used."""
    async with scripted(_reply_after_first_line(frame("info", info))) as port:
        with pytest.raises(client.ProtocolError, match=r"info|object"):
            await client.async_describe(HOST, port, FAST)


async def test_deeply_nested_json(socket_enabled: None) -> None:
    """Nesting deep enough to exhaust the parser is a protocol error."""
    body = b"[" * 200_000 + b"]" * 200_000
    reply = json.dumps({"type": "info", "data_length": len(body)}).encode()
    async with scripted(_reply_after_first_line(reply + b"\n" + body)) as port:
        with pytest.raises(client.ProtocolError):
            await client.async_describe(HOST, port, FAST)


async def test_transcript_without_text(socket_enabled: None) -> None:
    """A Transcript must carry text."""
    async with scripted(_reply_after_audio_stop(frame("transcript", {}))) as port:
        with pytest.raises(client.ProtocolError, match="text"):
            await client.async_transcribe(
                HOST, port, _audio(), PCM16K, language="en", model=None, timeouts=FAST
            )


async def test_audio_chunk_without_rate(socket_enabled: None) -> None:
    """Synthesized audio must say what it is."""
    reply = frame("audio-chunk", {"width": 2, "channels": 1}, bytes(100))
    async with scripted(_reply_after_first_line(reply)) as port:
        with pytest.raises(client.ProtocolError, match="rate"):
            await _speak(port, "Hello.")


async def test_endless_audio_is_cut(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply's audio is bounded in total, however it is split."""
    monkeypatch.setattr(client, "MAX_REPLY_AUDIO_BYTES", 200_000)
    chunk = frame(
        "audio-chunk", {"rate": 22050, "width": 2, "channels": 1}, bytes(8192)
    )

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()
        while True:
            writer.write(chunk)
            await writer.drain()

    async with scripted(script) as port:
        with pytest.raises(client.ProtocolError, match="audio"):
            await _speak(port, "Hello.")


@pytest.mark.parametrize("kind", ["ping", "unknown-event", "detection"])
async def test_flood_of_events(socket_enabled: None, kind: str) -> None:
    """Thousands of events that answer nothing end the request."""
    event = frame(kind, {"name": "hey_jarvis"} if kind == "detection" else {})

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()
        writer.write(event * 5000)
        await writer.drain()
        await reader.read()

    async with scripted(script) as port:
        request = (
            client.async_detect(
                HOST, port, _timed(10), PCM16K, names=["alexa"], timeouts=FAST
            )
            if kind == "detection"
            else client.async_describe(HOST, port, FAST)
        )
        with pytest.raises(client.ProtocolError, match="events"):
            await request


async def _timed(seconds: float) -> AsyncIterator[tuple[bytes, int]]:
    for n in range(int(seconds * 100)):
        await asyncio.sleep(0.01)
        yield bytes(320), n * 10


async def test_other_wake_word_is_not_a_wake(socket_enabled: None) -> None:
    """A detection of another word than the one listened for is ignored."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_frame(reader)
        writer.write(frame("detection", {"name": "hey_jarvis_v0.1", "timestamp": 5}))
        await writer.drain()
        while header := await read_frame(reader):
            if header["type"] == "audio-stop":
                writer.write(frame("not-detected"))
                await writer.drain()

    async with scripted(script) as port:
        detection, _ = await client.async_detect(
            HOST, port, _timed(0.3), PCM16K, names=["alexa_v0.1"], timeouts=FAST
        )
    assert detection is None


async def test_detection_name_of_the_wrong_type(socket_enabled: None) -> None:
    """A Detection whose name is not text is a protocol error."""
    reply = frame("detection", {"name": 42})
    async with scripted(_reply_after_first_line(reply)) as port:
        with pytest.raises(client.ProtocolError, match="name"):
            await client.async_detect(
                HOST, port, _timed(5), PCM16K, names=["alexa"], timeouts=FAST
            )


async def _never_reads(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await asyncio.sleep(30)


@pytest.mark.parametrize("service", ["stt", "wake"])
async def test_server_that_stops_reading(socket_enabled: None, service: str) -> None:
    """Audio into a server that reads nothing: a timeout, and no socket left."""

    async def flood() -> AsyncIterator[bytes]:
        for _ in range(20_000):
            yield bytes(16_000)

    async def timed_flood() -> AsyncIterator[tuple[bytes, int]]:
        async for chunk in flood():
            yield chunk, 0

    async with scripted(_never_reads) as port:
        started = time.monotonic()
        request = (
            client.async_transcribe(
                HOST, port, flood(), PCM16K, language="en", model=None, timeouts=FAST
            )
            if service == "stt"
            else client.async_detect(
                HOST, port, timed_flood(), PCM16K, names=None, timeouts=FAST
            )
        )
        with pytest.raises(client.ServerTimeoutError, match="reading"):
            await request
        assert time.monotonic() - started < 3
        assert await _closed(port)


async def test_failing_text_source_is_not_a_server_timeout(
    socket_enabled: None,
) -> None:
    """A text stream that fails ends the request at once, as the source's fault."""

    async def text() -> AsyncIterator[str]:
        yield "Hello "
        raise RuntimeError("the agent failed")

    async with scripted(_never_reads) as port:
        started = time.monotonic()
        with pytest.raises(client.TextSourceError, match="agent"):
            await _speak(port, text())
        assert time.monotonic() - started < 1


def _streaming_tts() -> Script:
    """A streaming text-to-speech server that speaks when the text is complete."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while header := await read_frame(reader):
            if header["type"] == "synthesize-stop":
                fmt = {"rate": 22050, "width": 2, "channels": 1}
                writer.write(
                    frame("audio-start", fmt)
                    + frame("audio-chunk", fmt, bytes(2000))
                    + frame("audio-stop")
                    + frame("synthesize-stopped")
                )
                await writer.drain()

    return script


async def test_text_stream_that_pauses(socket_enabled: None) -> None:
    """An agent that thinks longer than the answer bound is not the server's fault."""

    async def text() -> AsyncIterator[str]:
        yield "Let me check. "
        await asyncio.sleep(1.5)  # three times the server's answer bound
        yield "It is 21 degrees."

    async with scripted(_streaming_tts()) as port:
        assert await _speak(port, text()) == 2000


async def test_total_bound_while_the_caller_is_busy(socket_enabled: None) -> None:
    """The total bound ends the request with a timeout, not a stray cancellation."""
    fmt = {"rate": 22050, "width": 2, "channels": 1}

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()
        for _ in range(100):
            writer.write(frame("audio-chunk", fmt, bytes(200)))
            await writer.drain()
            await asyncio.sleep(0.05)

    async with scripted(script) as port:
        # The caller is busy 0.3 s per chunk when the 0.5 s bound ends.
        bound = client.Timeouts(connect=1, first_event=1, total=0.5)
        with pytest.raises(client.ServerTimeoutError):
            await _speak(port, "Hello.", bound, busy=0.3)


async def test_cancelled_detection_leaves_nothing_unread(
    socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelling a wake word detection logs nothing and leaves no task."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()
        await asyncio.sleep(0.2)
        writer.transport.abort()

    async with scripted(script) as port:
        task = asyncio.create_task(
            client.async_detect(
                HOST, port, _timed(10), PCM16K, names=None, timeouts=FAST
            )
        )
        await asyncio.sleep(0.4)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, client.WyomingError):
            await task
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


async def test_server_error_text_is_bounded(
    socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A 3 MB error text becomes a short, printable message."""
    reply = frame("error", {"text": "\x1b[31m" + "x" * 3_000_000, "code": "E"})
    caplog.set_level(logging.DEBUG)
    async with scripted(_reply_after_first_line(reply)) as port:
        with pytest.raises(client.ServerError) as raised:
            await client.async_describe(HOST, port, FAST)
    assert len(str(raised.value)) < client.MAX_ERROR_TEXT + 10
    assert "\x1b" not in str(raised.value)
