"""What the real Whisper server hears: the demo home's commands in many voices.

    python -m scripts.hearing leadin     A/B: the audio as it is, against the
                                         same audio with digital silence in front
    python -m scripts.hearing steer      A/B: with and without the home's
                                         names (transcript_names/terms)
    python -m scripts.hearing collect    write what Whisper mishears to
                                         tests/data/misheard.json, labelled
    python -m scripts.hearing label      label it again (no servers)

Every recording is sent straight to a real faster-whisper server the way a
live microphone reaches it through Home Assistant: a little room silence
before the speech (or none, as after a wake word) and the silence that
follows until the end of speech is decided. Voices: Piper joe and several
espeak-ng voices; each also with reverberation and noise at 10 dB SNR.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import difflib
import json
from pathlib import Path
import re
import subprocess
import sys
import tempfile

from rapidfuzz.distance import Levenshtein
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from scripts.commands import COMMANDS
from scripts.servers import launch
from scripts.speech import RATE, Speech, SpeechMaker, silence

PROJECT = Path(__file__).resolve().parents[1]
MISHEARD = PROJECT / "tests" / "data" / "misheard.json"

# The spoken-command suite's sentences.
SUITE = [command.text for command in COMMANDS]

# Other ways to say things to the same home, not in the suite.
HELD_OUT = [
    "Switch on the kitchen light.",
    "Switch off the living room lamp.",
    "Turn the bedroom light on.",
    "Turn the coffee machine off.",
    "Switch off the heater.",
    "Turn off the heater.",
    "Please lock the front door.",
    "Open the blinds in the living room.",
    "Close the blinds in the living room.",
    "Set the living room blinds to 30 percent.",
    "Turn on the lights in the kitchen.",
    "Turn off the lights in the kitchen.",
    "Turn off the lights in the bedroom.",
    "Set the thermostat to 19 degrees.",
    "What is the temperature in the living room?",
    "Is the kitchen light on?",
    "Is the heater on?",
    "Turn on the living room lamp please.",
    "Is the living room lamp on?",
    "Is the coffee machine off?",
]

# Voice name -> how it speaks a text. espeak-ng voices differ in accent,
# pitch and speed.
VOICES: dict[str, Callable[[SpeechMaker, str], Speech]] = {
    "piper-joe": lambda maker, text: maker.piper(text),
    "espeak-en-us": lambda maker, text: maker.espeak(text, "en-us", 150),
    "espeak-en-gb": lambda maker, text: maker.espeak(text, "en-gb", 150),
    "espeak-en-us-f3": lambda maker, text: maker.espeak(text, "en-us+f3", 140),
    "espeak-en-us-m3": lambda maker, text: maker.espeak(text, "en-us+m3", 160),
    "espeak-en-gb-scotland": lambda maker, text: maker.espeak(
        text, "en-gb-scotland", 145
    ),
    "espeak-en-029-f2": lambda maker, text: maker.espeak(text, "en-029+f2", 155),
}


def noisy(speech: Speech, snr_db: float = 10.0) -> Speech:
    """Return the speech in a reverberant, noisy room (pink noise at `snr_db`)."""
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "in.raw"
        raw.write_bytes(speech.pcm)
        fmt = ["-t", "raw", "-r", str(RATE), "-b", "16", "-c", "1", "-e", "signed"]
        reverb = subprocess.run(
            ["sox", *fmt, str(raw), *fmt, "-", "reverb", "40", "50", "60", "100"],
            check=True,
            capture_output=True,
        ).stdout[: len(speech.pcm)]
        rms_speech = _rms(reverb)
        samples = len(reverb) // 2
        noise = subprocess.run(
            [
                "sox",
                "-R",
                "-n",
                *fmt,
                "-",
                "synth",
                f"{samples}s",
                "pinknoise",
                "vol",
                "0.3",
            ],
            check=True,
            capture_output=True,
        ).stdout
        gain = rms_speech / max(_rms(noise), 1.0) / (10 ** (snr_db / 20))
    mixed = _mix(reverb, noise, gain)
    return Speech(speech.text, mixed)


def _rms(pcm: bytes) -> float:
    values = memoryview(pcm).cast("h")
    if not values:
        return 0.0
    return float((sum(v * v for v in values) / len(values)) ** 0.5)


def _mix(speech: bytes, noise: bytes, gain: float) -> bytes:
    a = memoryview(speech).cast("h")
    b = memoryview(noise).cast("h")
    out = bytearray(len(speech))
    view = memoryview(out).cast("h")
    for i in range(len(a)):
        value = a[i] + int(b[i % len(b)] * gain)
        view[i] = max(-32768, min(32767, value))
    return bytes(out)


@dataclass(frozen=True)
class Recording:
    """One sentence in one voice, clean or in a noisy room."""

    text: str
    voice: str
    room: str
    speech: Speech


def recordings(
    maker: SpeechMaker, texts: list[str], voices: list[str], rooms: list[str]
) -> list[Recording]:
    """Make every sentence in every voice and room."""
    made = []
    for voice in voices:
        for text in texts:
            clean = VOICES[voice](maker, text)
            for room in rooms:
                speech = clean if room == "clean" else noisy(clean)
                made.append(Recording(text, voice, room, speech))
    return made


def words(text: str) -> str:
    """Return the words of a sentence, lower case, without punctuation."""
    text = text.lower().replace("%", " percent").replace("°", " degrees")
    return " ".join(re.findall(r"[a-z0-9']+", text))


async def transcribe(
    port: int,
    pcm: bytes,
    names: list[str] | None = None,
    terms: list[str] | None = None,
) -> str:
    """Send 16 kHz audio to a Wyoming STT server in 10 ms chunks; return the text."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(
            Transcribe(
                language="en", transcript_names=names, transcript_terms=terms
            ).event()
        )
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for start in range(0, len(pcm), 320):
            chunk = AudioChunk(
                rate=RATE, width=2, channels=1, audio=pcm[start : start + 320]
            )
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        while True:
            event = await client.read_event()
            if event is None:
                raise RuntimeError("the server closed the connection")
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text


def live_like(speech: Speech, before: float, after: float) -> bytes:
    """Room silence, the speech, then the silence until the end is decided."""
    return (silence(before) + speech + silence(after)).pcm


async def _leadin(port: int, made: list[Recording]) -> None:
    variants = {
        "as sent": lambda pcm: pcm,
        "0.3 s lead-in": lambda pcm: bytes(int(0.3 * RATE) * 2) + pcm,
    }
    for before in (0.0, 0.5):
        print(f"\nSpeech after {before} s of room silence, 1.3 s after it:")
        right: dict[tuple[str, str], int] = {}
        total: dict[str, int] = {}
        for rec in made:
            pcm = live_like(rec.speech, before, 1.3)
            total[rec.voice] = total.get(rec.voice, 0) + 1
            # Alternate the order so neither variant always goes first.
            for name, variant in variants.items():
                heard = await transcribe(port, variant(pcm))
                if words(heard) == words(rec.text):
                    right[name, rec.voice] = right.get((name, rec.voice), 0) + 1
        for name in variants:
            per_voice = ", ".join(
                f"{voice} {right.get((name, voice), 0)}/{n}"
                for voice, n in total.items()
            )
            overall = sum(right.get((name, v), 0) for v in total)
            print(f"  {name}: {overall}/{sum(total.values())} exact ({per_voice})")


async def _steer(port: int, made: list[Recording]) -> None:
    """A/B: the same audio with and without the home's vocabulary.

    The audio without it is sent twice, to see how much the server differs
    from itself.
    """
    steered_same = plain_same = right_plain = right_steered = 0
    for rec in made:
        pcm = live_like(rec.speech, 0.5, 1.3)
        plain = await transcribe(port, pcm)
        steered = await transcribe(port, pcm, STEER_NAMES, STEER_TERMS)
        again = await transcribe(port, pcm)
        steered_same += plain == steered
        plain_same += plain == again
        right_plain += words(plain) == words(rec.text)
        right_steered += words(steered) == words(rec.text)
    print(
        f"{len(made)} recordings: with names the same as without {steered_same},"
        f" without names twice the same {plain_same};"
        f" word for word right without names {right_plain}, with {right_steered}"
    )


async def _collect(port: int, made: list[Recording], before: float) -> None:
    """Write every recording Whisper does not hear word for word."""
    misheard = []
    for rec in made:
        heard = await transcribe(port, live_like(rec.speech, before, 1.3))
        if words(heard) != words(rec.text):
            misheard.append(
                {"voice": rec.voice, "room": rec.room, "said": rec.text, "heard": heard}
            )
            print(f"{rec.voice} {rec.room}: {rec.text!r} heard {heard!r}", flush=True)
    MISHEARD.parent.mkdir(parents=True, exist_ok=True)
    MISHEARD.write_text(json.dumps(misheard, indent=1) + "\n")
    print(f"{len(misheard)} of {len(made)} misheard -> {MISHEARD}")
    _label()


# The names of the demo home (scripts/demo_home.py) that Assist may use.
HOME_NAMES = [
    "kitchen light",
    "living room lamp",
    "bedroom light",
    "coffee machine",
    "heater",
    "front door",
    "living room blinds",
    "thermostat",
    "kitchen",
    "living room",
    "bedroom",
]


# What Local Voice sends to steer a server in the demo home: the exposed
# names and areas; the terms are a sample of the local agent's words.
STEER_NAMES = [name.title() for name in HOME_NAMES]
STEER_TERMS = ["turn", "on", "off", "switch", "set", "open", "close", "lock", "unlock"]


def expected_repair(said: str, heard: str) -> bool:
    """Return whether a name repair is expected: only a name was misheard, closely.

    The words are aligned; every difference must fall inside a name of the
    home, and the heard letters must be close to the said ones (Levenshtein
    similarity of at least 0.6 with spaces taken out). This is the labelling
    rule of tests/data/misheard.json, independent of how the repair judges.
    """
    said_words, heard_words = words(said).split(), words(heard).split()
    inside = [False] * len(said_words)
    for name in HOME_NAMES:
        size = len(name.split())
        for start in range(len(said_words) - size + 1):
            if " ".join(said_words[start : start + size]) == name:
                inside[start : start + size] = [True] * size
    matcher = difflib.SequenceMatcher(a=said_words, b=heard_words, autojunk=False)
    changed = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changed:
        return False
    for _, s1, s2, h1, h2 in changed:
        if s1 == s2 or not all(inside[s1:s2]):
            return False
        meant = "".join(said_words[s1:s2])
        got = "".join(heard_words[h1:h2])
        if Levenshtein.normalized_similarity(meant, got) < 0.6:
            return False
    return True


def _label() -> None:
    misheard = json.loads(MISHEARD.read_text())
    for item in misheard:
        item["repair"] = expected_repair(item["said"], item["heard"])
    MISHEARD.write_text(json.dumps(misheard, indent=1) + "\n")
    print(f"{sum(i['repair'] for i in misheard)} of {len(misheard)} expect a repair")


def main() -> None:
    """Run one of the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["leadin", "steer", "collect", "label"])
    parser.add_argument("--voices", nargs="*", default=list(VOICES))
    parser.add_argument("--rooms", nargs="*", default=["clean", "noisy"])
    parser.add_argument("--texts", choices=["suite", "held-out", "all"], default="all")
    parser.add_argument(
        "--before", type=float, default=0.5, help="room silence before the speech"
    )
    args = parser.parse_args()
    texts = {"suite": SUITE, "held-out": HELD_OUT, "all": SUITE + HELD_OUT}[args.texts]
    if args.what == "label":
        _label()
        return
    work = Path(tempfile.mkdtemp(prefix="hearing-"))
    servers = launch.start_all(work / "servers")
    try:
        cache = PROJECT / ".cache" / "speech"
        cache.mkdir(parents=True, exist_ok=True)
        maker = SpeechMaker(servers["piper"].port, cache)
        made = recordings(maker, texts, args.voices, args.rooms)
        print(f"{len(made)} recordings", flush=True)
        if args.what == "leadin":
            asyncio.run(_leadin(servers["whisper"].port, made))
        elif args.what == "steer":
            asyncio.run(_steer(servers["whisper"].port, made))
        else:
            asyncio.run(_collect(servers["whisper"].port, made, args.before))
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
