"""Audio files to 16 kHz 16-bit mono PCM with ffmpeg, fenced in.

ffmpeg reads what it is handed and nothing else: a file that was opened
once (its descriptor is ffmpeg's standard input, so a link swapped in after
the check is never followed) or bytes on a pipe; only the `file` and `pipe`
protocols and the demuxers of the formats the action accepts are allowed;
its output is bounded, and only the tail of what it says on stderr is kept.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
import os
from pathlib import Path
import stat
from typing import Final

RATE: Final = 16000
SAMPLE_BYTES: Final = 2
# The suffixes the action accepts, and the demuxers that read them.
AUDIO_SUFFIXES: Final = frozenset(
    {".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".webm"}
)
DEMUXERS: Final = "wav,mp3,ogg,flac,mov,aac,matroska"
PROTOCOLS: Final = "file,pipe"
# A descriptor as a seekable file (MP4 keeps its index at the end); where
# /proc is missing, ffmpeg reads the descriptor as a stream.
OWN_FDS: Final = Path("/proc/self/fd")
OWN_STDIN: Final = OWN_FDS / "0"
# Looked up once, at import: not on the event loop for every call.
HAS_OWN_FDS: Final = OWN_FDS.is_dir()
READ_SIZE: Final = 65536
STDERR_TAIL_LINES: Final = 5


class DecodeError(Exception):
    """ffmpeg could not decode the audio; the message is its last words."""


class TooLongError(DecodeError):
    """The audio is longer than allowed."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A file opened for reading, and where it really is."""

    fd: int
    where: Path


def open_checked(path: Path, allowed: Callable[[Path], bool]) -> Opened | None:
    """Open a file once, then judge where the open file really is.

    Returns None when `allowed` turns that place down; raises
    FileNotFoundError when it is no regular file (a folder, a pipe). The
    descriptor is closed unless returned. Blocking: run it in the executor.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    keep = False
    try:
        link = OWN_FDS / str(fd)
        where = link.readlink() if HAS_OWN_FDS else path.resolve()
        if not allowed(where):
            return None
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        if regular:
            os.set_blocking(fd, True)
            keep = True
    finally:
        if not keep:
            os.close(fd)
    if not regular:
        raise FileNotFoundError(f"{where} is not a file")
    return Opened(fd, where)


async def async_decode(
    ffmpeg: str,
    *,
    fd: int | None = None,
    data: bytes | None = None,
    max_seconds: int,
) -> bytes:
    """Return the audio of an opened file (`fd`) or of `data` as PCM.

    Raises TooLongError past `max_seconds`, DecodeError when ffmpeg fails or
    says nothing. ffmpeg never outlives the call, also when it is cancelled
    (the caller bounds its time).
    """
    limit = max_seconds * RATE * SAMPLE_BYTES
    source = "pipe:0"
    if fd is not None and HAS_OWN_FDS:
        source = f"file:{OWN_STDIN}"
    command = [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-protocol_whitelist",
        PROTOCOLS,
        "-format_whitelist",
        DEMUXERS,
        "-i",
        source,
        # One more second than allowed tells an over-long file from a long one.
        "-t",
        str(max_seconds + 1),
        "-vn",
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        str(RATE),
        "pipe:1",
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=fd if fd is not None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    said: deque[bytes] = deque(maxlen=STDERR_TAIL_LINES)
    pcm = bytearray()

    async def feed() -> None:
        if process.stdin is None:
            return
        with suppress(BrokenPipeError, ConnectionResetError):
            if data:
                process.stdin.write(data)
                await process.stdin.drain()
            process.stdin.close()

    async def read_out() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(READ_SIZE):
            if len(pcm) <= limit:
                pcm.extend(chunk[: limit + 1 - len(pcm)])

    async def read_err() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            said.append(line[:500])

    try:
        await asyncio.gather(feed(), read_out(), read_err())
        await process.wait()
    finally:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if len(pcm) > limit:
        raise TooLongError
    if process.returncode != 0 or not pcm:
        words = [line.decode(errors="replace").strip() for line in said]
        words = [w for w in words if w]
        raise DecodeError(words[-1] if words else "no audio")
    return bytes(pcm)
