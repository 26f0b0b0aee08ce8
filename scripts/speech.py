"""Real test speech: Piper's voice through its Wyoming server, or espeak-ng."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
import hashlib
import io
import json
from pathlib import Path
import socket
import subprocess
import wave

RATE = 16000
BYTES_PER_SECOND = RATE * 2


@dataclass(frozen=True)
class Speech:
    """16 kHz, 16-bit, mono PCM."""

    text: str
    pcm: bytes

    @property
    def seconds(self) -> float:
        """Return the duration."""
        return len(self.pcm) / BYTES_PER_SECOND

    def wav(self) -> bytes:
        """Return the audio as a WAV file."""
        with io.BytesIO() as buffer:
            with wave.open(buffer, "wb") as writer:
                writer.setframerate(RATE)
                writer.setsampwidth(2)
                writer.setnchannels(1)
                writer.writeframes(self.pcm)
            return buffer.getvalue()

    def chunks(self, size: int = 1024, tail_silence: float = 0.0) -> list[bytes]:
        """Split into chunks, adding trailing silence."""
        pcm = self.pcm + bytes(int(tail_silence * RATE) * 2)
        return [pcm[i : i + size] for i in range(0, len(pcm), size)]

    async def stream(
        self, size: int = 1024, tail_silence: float = 0.0
    ) -> AsyncIterator[bytes]:
        """Yield the chunks as an async stream, as a microphone would."""
        for chunk in self.chunks(size, tail_silence):
            yield chunk

    async def timed_stream(
        self, size: int = 1024, tail_silence: float = 0.0
    ) -> AsyncIterator[tuple[bytes, int]]:
        """Yield chunks with their timestamps in milliseconds."""
        position = 0
        for chunk in self.chunks(size, tail_silence):
            yield chunk, position * 1000 // BYTES_PER_SECOND
            position += len(chunk)

    def end(self, loudness: int = 300) -> float:
        """Return where the last sample louder than `loudness` is, in seconds."""
        samples = memoryview(self.pcm).cast("h")
        last = max(i for i, x in enumerate(samples) if abs(x) > loudness)
        return (last + 1) / RATE

    def trimmed(self, loudness: int = 300) -> Speech:
        """Return the speech without the silence before and after it."""
        samples = memoryview(self.pcm).cast("h")
        first = next(i for i, x in enumerate(samples) if abs(x) > loudness)
        last = round(self.end(loudness) * RATE)
        return Speech(self.text, self.pcm[first * 2 : last * 2])

    def __add__(self, other: Speech) -> Speech:
        """Concatenate two utterances."""
        return Speech(f"{self.text} {other.text}", self.pcm + other.pcm)


def to_pcm16k(wav: bytes) -> bytes:
    """Convert a WAV file to raw 16 kHz 16-bit mono with sox."""
    return subprocess.run(
        [
            "sox",
            "-t",
            "wav",
            "-",
            "-r",
            "16000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
            "-",
        ],
        input=wav,
        capture_output=True,
        check=True,
    ).stdout


def silence(seconds: float) -> Speech:
    """Return silence."""
    return Speech("", bytes(int(seconds * RATE) * 2))


class SpeechMaker:
    """Make speech once and keep it on disk for the session."""

    def __init__(self, piper_port: int, cache: Path) -> None:
        """Use the Piper server on `piper_port`."""
        self.piper_port = piper_port
        self.cache = cache

    def _to_16k(self, wav_in: Path, key: str, text: str) -> Speech:
        out = self.cache / f"{key}.16k.raw"
        if not out.exists():
            out.write_bytes(to_pcm16k(wav_in.read_bytes()))
        return Speech(text, out.read_bytes())

    def piper(self, text: str) -> Speech:
        """Speak `text` with Piper's joe voice."""
        key = "piper-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        wav_path = self.cache / f"{key}.wav"
        if not wav_path.exists():
            wav_path.write_bytes(piper_wav(self.piper_port, text))
        return self._to_16k(wav_path, key, text)

    def espeak(self, text: str, voice: str = "en-us", speed: int = 150) -> Speech:
        """Speak `text` with espeak-ng."""
        key = (
            "espeak-"
            + hashlib.sha256(f"{voice}{speed}{text}".encode()).hexdigest()[:12]
        )
        wav_path = self.cache / f"{key}.wav"
        if not wav_path.exists():
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav_path), text],
                check=True,
            )
        return self._to_16k(wav_path, key, text)


def piper_wav(port: int, text: str) -> bytes:
    """Synthesize with a plain socket, independent of the code under test."""
    request = json.dumps({"type": "synthesize", "data": {"text": text}}) + "\n"
    audio = bytearray()
    rate = width = channels = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(request.encode())
        stream = sock.makefile("rb")
        while True:
            line = stream.readline()
            if not line:
                raise RuntimeError("piper closed the connection")
            header = json.loads(line)
            data = header.get("data") or {}
            if header.get("data_length"):
                data.update(json.loads(stream.read(header["data_length"])))
            payload = (
                stream.read(header["payload_length"])
                if header.get("payload_length")
                else b""
            )
            if header["type"] == "audio-start":
                rate, width, channels = data["rate"], data["width"], data["channels"]
            elif header["type"] == "audio-chunk":
                audio += payload
            elif header["type"] == "audio-stop":
                break
            elif header["type"] == "error":
                raise RuntimeError(data)
    with io.BytesIO() as buffer:
        with wave.open(buffer, "wb") as writer:
            writer.setframerate(rate)
            writer.setsampwidth(width)
            writer.setnchannels(channels)
            writer.writeframes(bytes(audio))
        return buffer.getvalue()
