"""What the real Whisper server hears: the demo home's commands in many voices.

    python -m scripts.hearing leadin     A/B: the audio as it is, against the
                                         same audio with digital silence in front
    python -m scripts.hearing steer      A/B: with and without the home's
                                         names (transcript_names/terms)
    python -m scripts.hearing collect    write what Whisper mishears to
                                         tests/data/misheard.json, labelled
    python -m scripts.hearing label      label it again (no servers)
    python -m scripts.hearing prompt     A/B/C: Whisper's initial prompt empty,
                                         the home's names, names and command
                                         words (scripts/servers/whisper_prompt);
                                         also sentences that are no command and
                                         audio without speech

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
import math
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from rapidfuzz.distance import Levenshtein
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from custom_components.local_voice.chain import Vocabulary
from scripts.commands import COMMANDS
from scripts.demo_home import AREAS, CLIMATE, EXPOSED, TEMPLATE
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
    reverb = _reverb(speech.pcm)
    noise = _pink_noise(len(reverb) // 2)
    return Speech(speech.text, _mix(reverb, noise, _gain(reverb, noise, snr_db)))


def room_noise(reference: Speech, seconds: float, snr_db: float = 10.0) -> Speech:
    """Return the noise of `noisy(reference, snr_db)` alone, `seconds` long."""
    noise = _pink_noise(int(seconds * RATE))
    gain = _gain(_reverb(reference.pcm), noise, snr_db)
    return Speech("", _mix(bytes(len(noise)), noise, gain))


_RAW = ["-t", "raw", "-r", str(RATE), "-b", "16", "-c", "1", "-e", "signed"]


def _reverb(pcm: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "in.raw"
        raw.write_bytes(pcm)
        return subprocess.run(
            ["sox", *_RAW, str(raw), *_RAW, "-", "reverb", "40", "50", "60", "100"],
            check=True,
            capture_output=True,
        ).stdout[: len(pcm)]


def _pink_noise(samples: int) -> bytes:
    return subprocess.run(
        [
            "sox",
            "-R",
            "-n",
            *_RAW,
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


def _gain(speech: bytes, noise: bytes, snr_db: float) -> float:
    return _rms(speech) / max(_rms(noise), 1.0) / (10 ** (snr_db / 20))


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


# --- prompt: Whisper's initial prompt, per request (scripts/servers/whisper_prompt)

NOT_COMMANDS_FILE = PROJECT / "tests" / "data" / "not_commands.txt"
PROMPT_REPORT = PROJECT / ".cache" / "hearing-prompt.json"
# Audio without speech: digital silence (clean) or the noisy room alone.
NO_SPEECH_SECONDS = (1.5, 3.0, 5.0)


def demo_names() -> list[str]:
    """Return the demo home's exposed entity names and its areas, sorted."""
    named: dict[str, str] = {}
    for platforms in TEMPLATE:
        for domain, items in platforms.items():
            for item in items:
                named[f"{domain}.{_slug(item['name'])}"] = item["name"]
    for item in CLIMATE:
        named[f"climate.{_slug(item['name'])}"] = item["name"]
    return sorted({named[entity] for entity in EXPOSED} | set(AREAS))


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_")


def prompt_variants() -> dict[str, str | None]:
    """Return the three prompts: none, the home's names, names and command words.

    Made by the integration's own Vocabulary.prompt, so what is measured is
    what an assistant sends.
    """
    vocabulary = Vocabulary(names=tuple(demo_names()))
    return {
        "none": None,
        "names": vocabulary.prompt(),
        "names+words": vocabulary.prompt("en"),
    }


def spread(texts: list[str], limit: int | None) -> list[str]:
    """Return at most `limit` of the texts, evenly spread over the list."""
    if limit is None or limit >= len(texts):
        return texts
    return [texts[index * len(texts) // limit] for index in range(limit)]


def not_commands() -> list[str]:
    """Return the sentences that are no command (tests/data/not_commands.txt)."""
    return [
        line
        for line in NOT_COMMANDS_FILE.read_text().splitlines()
        if line and not line.startswith("#")
    ]


def names_in(text: str, names: list[str]) -> list[str]:
    """Return the names said in a text, longest first, without overlaps."""
    said = words(text).split()
    taken = [False] * len(said)
    found = []
    for name in sorted(names, key=lambda n: -len(n.split())):
        size = len(name.split())
        for start in range(len(said) - size + 1):
            span = range(start, start + size)
            if " ".join(said[start : start + size]) == name and not any(
                taken[i] for i in span
            ):
                found.append(name)
                for i in span:
                    taken[i] = True
    return found


async def transcribe_timed(
    port: int, pcm: bytes, prompt: str | None
) -> tuple[str, float]:
    """Transcribe with an initial prompt; also return the seconds after AudioStop."""
    context = {"initial_prompt": prompt} if prompt else None
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en", context=context).event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for start in range(0, len(pcm), 320):
            chunk = AudioChunk(
                rate=RATE, width=2, channels=1, audio=pcm[start : start + 320]
            )
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        stopped = time.monotonic()
        while True:
            event = await client.read_event()
            if event is None:
                raise RuntimeError("the server closed the connection")
            if Transcript.is_type(event.type):
                text = Transcript.from_event(event).text
                return text, time.monotonic() - stopped


@dataclass(frozen=True)
class Clip:
    """What is sent: a command, a sentence that is none, or no speech."""

    kind: str
    recording: Recording
    pcm: bytes


def prompt_clips(
    maker: SpeechMaker,
    commands: list[str],
    others: list[str],
    voices: list[str],
    rooms: list[str],
) -> list[Clip]:
    """Make the clips: speech as after a wake word, and audio without speech."""
    clips: list[Clip] = []
    for kind, texts in (("command", commands), ("other", others)):
        clips.extend(
            Clip(kind, rec, live_like(rec.speech, 0.5, 1.3))
            for rec in recordings(maker, texts, voices, rooms)
        )
    reference = VOICES[voices[0]](maker, commands[0])
    for seconds in NO_SPEECH_SECONDS:
        for room in rooms:
            audio = (
                silence(seconds) if room == "clean" else room_noise(reference, seconds)
            )
            rec = Recording("", "none", room, audio)
            clips.append(Clip("silence", rec, audio.pcm))
    return clips


def _percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else 0.0


def _wer(results: list[dict[str, Any]], variant: str) -> float:
    """Word error rate over the results: errors per word said."""
    said = sum(len(words(r["said"]).split()) for r in results)
    errors: int = sum(r["errors"][variant] for r in results)
    return errors / max(said, 1)


def _errors(said: str, heard: str) -> int:
    return int(Levenshtein.distance(words(said).split(), words(heard).split()))


async def _run_prompt(port: int, clips: list[Clip]) -> list[dict[str, Any]]:
    """Send every clip with every prompt; the variants take turns going first."""
    variants = prompt_variants()
    names = [name.lower() for name in demo_names()]
    order = list(variants)
    results = []
    # The model's first call is slow: not measured.
    await transcribe_timed(port, clips[0].pcm, None)
    started = time.monotonic()
    for index, clip in enumerate(clips):
        shift = index % len(order)
        heard: dict[str, str] = {}
        seconds: dict[str, float] = {}
        for variant in order[shift:] + order[:shift]:
            heard[variant], seconds[variant] = await transcribe_timed(
                port, clip.pcm, variants[variant]
            )
        said = clip.recording.text
        said_names = names_in(said, names)
        results.append(
            {
                "kind": clip.kind,
                "said": said,
                "voice": clip.recording.voice,
                "room": clip.recording.room,
                "seconds": round(len(clip.pcm) / (2 * RATE), 2),
                "names": said_names,
                "heard": heard,
                "latency": {v: round(s, 4) for v, s in seconds.items()},
                "exact": {v: words(h) == words(said) for v, h in heard.items()},
                "errors": {v: _errors(said, h) for v, h in heard.items()},
                "names_right": {
                    v: sum(name in names_in(h, names) for name in said_names)
                    for v, h in heard.items()
                },
                "names_inserted": {
                    v: sorted(set(names_in(h, names)) - set(said_names))
                    for v, h in heard.items()
                },
            }
        )
        if (index + 1) % 25 == 0 or index + 1 == len(clips):
            print(
                f"  {index + 1}/{len(clips)} clips, {time.monotonic() - started:.0f} s",
                flush=True,
            )
    return results


def prompt_summary(
    results: list[dict[str, Any]], variants: list[str]
) -> list[dict[str, Any]]:
    """Sum the results up per variant and room."""
    rows = []
    for variant in variants:
        for room in sorted({r["room"] for r in results}):
            here = [r for r in results if r["room"] == room]
            commands = [r for r in here if r["kind"] == "command"]
            others = [r for r in here if r["kind"] == "other"]
            quiet = [r for r in here if r["kind"] == "silence"]
            latencies = [r["latency"][variant] for r in here]

            rows.append(
                {
                    "variant": variant,
                    "room": room,
                    "commands": len(commands),
                    "commands_exact": sum(r["exact"][variant] for r in commands),
                    "commands_wer": round(_wer(commands, variant), 4),
                    "names": sum(len(r["names"]) for r in commands),
                    "names_right": sum(r["names_right"][variant] for r in commands),
                    "others": len(others),
                    "others_exact": sum(r["exact"][variant] for r in others),
                    "others_wer": round(_wer(others, variant), 4),
                    "others_with_inserted_names": sum(
                        bool(r["names_inserted"][variant]) for r in others
                    ),
                    "silence": len(quiet),
                    "silence_with_text": sum(
                        bool(words(r["heard"][variant])) for r in quiet
                    ),
                    "latency_median": round(statistics.median(latencies), 3),
                    "latency_p95": round(_percentile(latencies, 0.95), 3),
                }
            )
    return rows


def paired(results: list[dict[str, Any]], a: str, b: str) -> dict[str, int]:
    """Commands exactly right with `a` but not `b` (broken), and the reverse (fixed)."""
    commands = [r for r in results if r["kind"] == "command"]
    return {
        "fixed": sum(r["exact"][b] and not r["exact"][a] for r in commands),
        "broken": sum(r["exact"][a] and not r["exact"][b] for r in commands),
        "both_right": sum(r["exact"][a] and r["exact"][b] for r in commands),
        "both_wrong": sum(not r["exact"][a] and not r["exact"][b] for r in commands),
    }


def print_prompt_report(
    rows: list[dict[str, Any]],
    pairs: dict[str, dict[str, int]],
    results: list[dict[str, Any]],
    variants: dict[str, str | None],
) -> None:
    """Print the table, the paired comparisons and what was made up."""
    for name, prompt in variants.items():
        print(
            f"prompt {name}: {prompt!r}" + (f" ({len(prompt)} chars)" if prompt else "")
        )
    header = (
        f"{'variant':<12} {'room':<6} {'cmds exact':>11} {'cmd WER':>8}"
        f" {'names right':>12} {'other exact':>12} {'other WER':>10}"
        f" {'+names':>7} {'silence text':>13} {'median s':>9} {'p95 s':>6}"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['variant']:<12} {row['room']:<6}"
            f" {row['commands_exact']:>5}/{row['commands']:<5}"
            f" {row['commands_wer']:>8.1%}"
            f" {row['names_right']:>6}/{row['names']:<5}"
            f" {row['others_exact']:>6}/{row['others']:<5}"
            f" {row['others_wer']:>10.1%}"
            f" {row['others_with_inserted_names']:>7}"
            f" {row['silence_with_text']:>7}/{row['silence']:<5}"
            f" {row['latency_median']:>9.2f} {row['latency_p95']:>6.2f}"
        )
    print(
        "  +names: sentences that are no command heard with a home name not said;"
        " silence text: no-speech clips heard as words;"
        " latency: AudioStop to Transcript"
    )
    for label, counts in pairs.items():
        print(
            f"commands, {label}: fixed {counts['fixed']}, broken {counts['broken']}"
            f" (both right {counts['both_right']}, both wrong {counts['both_wrong']})"
        )
    for variant in variants:
        made_up = sorted(
            {
                f"{r['room']}: {r['heard'][variant].strip()!r}"
                for r in results
                if r["kind"] == "silence" and words(r["heard"][variant])
            }
        )
        inserted = [
            f"{r['said']!r} -> {r['heard'][variant].strip()!r}"
            for r in results
            if r["kind"] == "other" and r["names_inserted"][variant]
        ]
        if made_up or inserted:
            print(f"{variant}:")
        for line in made_up:
            print(f"  no speech heard as {line}")
        for line in inserted[:10]:
            print(f"  name inserted: {line}")
        if len(inserted) > 10:
            print(f"  ... {len(inserted) - 10} more name insertions")


def _prompt(args: argparse.Namespace, texts: list[str]) -> None:
    """A/B/C: no prompt, the home's names, names and command words."""
    work = Path(tempfile.mkdtemp(prefix="hearing-"))
    piper = launch.start(
        "piper", launch.commands(work)["piper"], launch.free_port(), work
    )
    whisper = launch.start(
        "whisper_prompt", launch.prompt_server(), launch.free_port(), work
    )
    try:
        launch.wait_ready([piper, whisper])
        cache = PROJECT / ".cache" / "speech"
        cache.mkdir(parents=True, exist_ok=True)
        maker = SpeechMaker(piper.port, cache)
        commands = spread(texts, args.limit)
        others = spread(not_commands(), args.limit)
        started = time.monotonic()
        clips = prompt_clips(maker, commands, others, args.voices, args.rooms)
        print(
            f"{len(clips)} clips ({len(commands)} commands, {len(others)} others,"
            f" voices {', '.join(args.voices)}; rooms {', '.join(args.rooms)})"
            f" made in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        results = asyncio.run(_run_prompt(whisper.port, clips))
    finally:
        piper.stop()
        whisper.stop()
    variants = prompt_variants()
    rows = prompt_summary(results, list(variants))
    pairs = {
        "none -> names": paired(results, "none", "names"),
        "none -> names+words": paired(results, "none", "names+words"),
    }
    print_prompt_report(rows, pairs, results, variants)
    PROMPT_REPORT.parent.mkdir(parents=True, exist_ok=True)
    PROMPT_REPORT.write_text(
        json.dumps(
            {
                "voices": args.voices,
                "rooms": args.rooms,
                "limit": args.limit,
                "prompts": variants,
                "summary": rows,
                "paired": pairs,
                "clips": results,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"-> {PROMPT_REPORT}")


def main() -> None:
    """Run one of the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "what", choices=["leadin", "steer", "collect", "label", "prompt"]
    )
    parser.add_argument("--voices", nargs="*", default=list(VOICES))
    parser.add_argument("--rooms", nargs="*", default=["clean", "noisy"])
    parser.add_argument("--texts", choices=["suite", "held-out", "all"], default="all")
    parser.add_argument(
        "--before", type=float, default=0.5, help="room silence before the speech"
    )
    parser.add_argument(
        "--limit", type=int, help="prompt: at most N commands and N other sentences"
    )
    args = parser.parse_args()
    texts = {"suite": SUITE, "held-out": HELD_OUT, "all": SUITE + HELD_OUT}[args.texts]
    if args.what == "label":
        _label()
        return
    if args.what == "prompt":
        _prompt(args, texts)
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
