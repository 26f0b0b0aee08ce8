"""A wake word benchmark corpus: long speech without "Alexa", and "Alexa, ..." commands.

Two parts, both 16 kHz 16-bit mono (scripts.speech.Speech), both the same on
every run for a seed (`SEED` by default):

- Speech pieces (`speech_pieces`): at least 32 minutes (configurable) in
  pieces of about 2 minutes, of news, conversation and television, dense
  with words near "Alexa" ("Alexis", "a lexicon", "Alaska", "election",
  "Alexander", "Alex says", "a Lexus", "relax a", "Electra", ...) but never
  the word itself. Some pieces are a television: speech over generated music
  or noise, or a room's conversation over a television's voice.
- Wake commands (`wake_commands`): "Alexa" and then a command to the demo
  home, in six voices (five espeak-ng ones and Piper's joe), half with a
  breath after the wake word (0.4 to 0.6 s of silence) and half without
  (0.2 to 0.25 s: the pause a detector needs to fire at all; with none,
  microWakeWord fired on 0 of 24), with seconds of silence before and after. "Alexa" is its own
  synthesis, its silence trimmed, so where it ends is known to the sample.

Speech comes from a `SpeechMaker`, which keeps every synthesis on disk: a
second run reads them back, and the pieces are the same. Only Piper needs a
server (its joe voice); music and noise are generated with numpy. Piper
samples its speech, so a first synthesis of a Piper sentence may differ from
another computer's; everything else follows from the seed.

    python -m tests.wake_corpus --out DIR [--minutes 32] [--commands 48]

writes every piece and command as a WAV and `manifest.json` (texts, voices,
where each line and each "Alexa" starts and ends), starting a Piper server
unless `--piper-port` names one.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import asdict, dataclass
import hashlib
import json
import math
from pathlib import Path
import random
import re
import subprocess
import tempfile

import numpy as np
import numpy.typing as npt

from scripts.servers import launch
from scripts.speech import RATE, Speech, SpeechMaker

PROJECT = Path(__file__).resolve().parents[1]
SEED = "local-voice wake corpus 1"
MINUTES = 32.0
PIECE_SECONDS = 120.0
COMMAND_COUNT = 48
WAKE_WORD = "Alexa"

Audio = npt.NDArray[np.float32]

# Speech is levelled to this RMS (of its voiced samples), about -20 dBFS.
LEVEL = 3300.0
# A sample this loud or louder is speech when trimming and levelling.
LOUD = 250.0


@dataclass(frozen=True)
class Voice:
    """A voice: an espeak-ng voice with its range of speeds, or Piper's joe."""

    name: str
    espeak: str | None
    speeds: tuple[int, int] = (140, 175)


PIPER = Voice("piper-joe", None)
# Piper speaks at one speed; its sentences are sped up or slowed down by sox
# within this range.
PIPER_TEMPO = (0.9, 1.12)

# The voices of the speech pieces; Piper's joe three times as often as each
# espeak-ng voice.
SPEECH_VOICES = (
    PIPER,
    PIPER,
    PIPER,
    Voice("espeak-en-us", "en-us", (135, 185)),
    Voice("espeak-en-gb", "en-gb", (135, 180)),
    Voice("espeak-en-us-f3", "en-us+f3", (130, 170)),
    Voice("espeak-en-gb-rp-m3", "en-gb-x-rp+m3", (140, 185)),
    Voice("espeak-en-gb-scotland-m2", "en-gb-scotland+m2", (135, 175)),
    Voice("espeak-en-029-f2", "en-029+f2", (140, 175)),
    Voice("espeak-en-us-nyc-m7", "en-us-nyc+m7", (145, 190)),
    Voice("espeak-en-gb-f4", "en-gb+f4", (130, 170)),
    Voice("espeak-en-us-f5", "en-us+f5", (135, 175)),
)

# The voices of the wake commands: each says as many, half with a breath.
WAKE_VOICES = (
    PIPER,
    Voice("espeak-en-us", "en-us", (140, 175)),
    Voice("espeak-en-gb", "en-gb", (140, 175)),
    Voice("espeak-en-us-f3", "en-us+f3", (135, 165)),
    Voice("espeak-en-gb-rp-m3", "en-gb-x-rp+m3", (140, 175)),
    Voice("espeak-en-029-f2", "en-029+f2", (140, 170)),
)

# Commands to the demo home (scripts/demo_home.py; the garage door is a
# device the demo home does not have).
COMMANDS = (
    "turn on the kitchen light",
    "turn off the kitchen light",
    "what is the temperature in the kitchen",
    "what is the temperature",
    "unlock the front door",
    "lock the front door",
    "close the garage door",
    "turn off the living room lights",
    "turn on the living room lamp",
    "turn off the bedroom light",
    "turn on the coffee machine",
    "turn on the heater",
    "open the living room blinds",
    "close the living room blinds",
    "set the living room blinds to 50 percent",
    "is the front door locked",
)

# Words near "Alexa" that the texts are seeded with; a line holds one or more.
NEAR_WORDS = (
    "Alexis",
    "lexicon",
    "Alaska",
    "election",
    "Alexander",
    "Alex says",
    "Alex, say",
    "Lexus",
    "relax a",
    "Electra",
    "Alexandria",
    "Alexandra",
    "Alexei",
    "Alessa",
    "Alyssa",
    "Alec",
    "Lexi",
    "Lexington",
    "selection",
    "electric",
    "elect a",
    "dyslexia",
)

# Filled into the texts' {slots}.
SLOTS: dict[str, tuple[str, ...]] = {
    "near_name": (
        "Alexis",
        "Alexander",
        "Alex",
        "Alexei",
        "Alyssa",
        "Alessa",
        "Alexandra",
        "Electra",
        "Alec",
        "Lexi",
    ),
    "name": (
        "Maria",
        "John",
        "Priya",
        "Tom",
        "Grace",
        "Daniel",
        "Fatima",
        "Oliver",
        "Hannah",
        "Samuel",
        "Rosa",
        "Peter",
        "Nora",
        "Felix",
        "Alice",
    ),
    "surname": (
        "Morgan",
        "Patel",
        "Novak",
        "Okafor",
        "Lindqvist",
        "Hughes",
        "Moreau",
        "Tanaka",
        "Brennan",
        "Costa",
    ),
    "place": (
        "Alaska",
        "Alexandria",
        "Lexington",
        "Nebraska",
        "Atlanta",
        "Alberta",
        "Boston",
        "Denver",
        "Glasgow",
        "Leeds",
        "Dallas",
        "Halifax",
        "Lisbon",
        "Anchorage",
    ),
    "day": (
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ),
    "month": ("January", "March", "April", "June", "August", "October"),
    "number": tuple(str(n) for n in (3, 7, 12, 15, 18, 24, 30, 42, 55, 61, 75, 90)),
    "building": (
        "library",
        "bridge",
        "museum",
        "stadium",
        "train station",
        "market hall",
        "swimming pool",
        "old school",
    ),
}

NEWS = (
    "Good evening, and welcome to the late news from {place}.",
    "Voters in {place} go to the polls on {day} in a closely watched election.",
    "The election commission says turnout reached {number} percent, a record for {place}.",
    "{near_name} {surname}, the candidate for mayor, conceded the election shortly after midnight.",
    "Officials in {place} said the {building} would reopen to the public on {day}.",
    "A spokesman for Alexander {surname} declined to comment on the selection of the new board.",
    "Police in {place} are asking drivers to avoid the ring road after a crash involving a Lexus and a delivery van.",
    "Scientists in Alaska have recorded the warmest {month} since records began.",
    "The storm is expected to reach the coast of Alaska by {day}, with winds of up to {number} miles an hour.",
    "In business news, shares in the electric carmaker rose {number} percent after strong sales.",
    "The publisher says its new lexicon of regional words will be in the shops by {day}.",
    "{near_name} {surname} has been named the new director of the {place} museum.",
    "The city council will vote on {day} on plans to expand the {building}.",
    "Electra, the opera company's new production, opens in {place} next month.",
    "Traffic is heavy on the bridge into Alexandria this morning after roadworks overran.",
    "Analysts say the early election could reshape the government for a decade.",
    "Farmers near {place} warn that the dry summer will raise the price of bread.",
    "Coach Alex says the team is confident ahead of {day}'s final in {place}.",
    "The weather tonight: clear skies over {place}, with a light frost inland.",
    "Tickets for the festival in Lexington sold out within {number} minutes.",
    "A new study suggests that people who relax a little more each day sleep better.",
    "The minister for Alaska will visit the flooded towns on {day}.",
    "The selection committee will announce the national squad on {day}.",
    "Sports now: {near_name} scored twice as {place} beat the visitors three goals to one.",
    "Rail services between {place} and {place} are cancelled until further notice.",
    "The election of a new party leader has been put off until the autumn.",
    "Police recovered a stolen Lexus near the harbour in {place} early on {day}.",
    "Residents say the new bus lanes have made the morning commute much faster.",
    "The exhibition on Alexander the Great has drawn {number} thousand visitors.",
    "Economists expect the central bank to hold interest rates at {number} percent.",
    "Election officials in {place} counted ballots through the night.",
    "Here is the forecast for Alaska: snow in the north and rain along the coast.",
    "Lawyers for {near_name} {surname} say an appeal will be filed by {day}.",
    "Engineers have begun repairs on the electric grid after {day}'s blackout.",
    "A charity for children with dyslexia opened its first school in {place}.",
    "Voters will elect a new council in {place} for the first time in {number} years.",
    "And finally, a dog in {place} has learned to open the fridge on its own.",
    "The court heard that {name} {surname} had sold the Lexus a week before the fire.",
    "The airport in Anchorage reopened after {number} hours of heavy snow.",
)

CONVERSATION = (
    "Did {near_name} ever call you back about the flat?",
    "Alex says he'll be late again, so start without him.",
    "Honestly, you need to relax a bit, it's only a test.",
    "I think a Lexus is far too expensive for us right now.",
    "Have you seen my keys? I left them on the kitchen table.",
    "We could drive up to Alaska next summer if the car survives.",
    "Who did you vote for in the last election, if you don't mind me asking?",
    "My brother Alexander is coming over for dinner on {day}.",
    "She bought a lexicon of old sailing words at the market.",
    "Can you relax a moment and listen to what I'm saying?",
    "{name} told me that {near_name} got the job in {place}.",
    "Let's order a pizza tonight, I'm too tired to cook.",
    "Is it just me, or is the kitchen always cold in the morning?",
    "Alexis and I are going to the cinema, do you want to come?",
    "I'd rather not talk about the election at dinner again.",
    "Electra is such an unusual name for a cat.",
    "What time does the train to {place} leave tomorrow?",
    "If Alex says yes, we can all go together.",
    "Remind me to buy milk, eggs and a loaf of bread on the way home.",
    "The heating bill was twice as high as last winter.",
    "Did you hear that {near_name} moved to {place}?",
    "Sit down, relax a little, I'll make us some tea.",
    "That new Lexus next door must have cost a fortune.",
    "I can never remember whether {name} takes sugar in her coffee.",
    "Honestly, Alexander, you've been on that phone all evening.",
    "We should water the plants before we leave on {day}.",
    "The election leaflets are piling up by the front door.",
    "Could you pass me the remote? It's next to the lamp.",
    "Alex, say something nice to your sister, please.",
    "I'm not sure the kitchen light is working properly.",
    "{near_name} has been learning the guitar for three years now.",
    "Let me check the calendar, I think {day} is free.",
    "Why is the dishwasher making that noise again?",
    "The garage door was open all night, did you notice?",
    "It's a lexicon, not a dictionary, there is a difference.",
    "Alexis says the film was too long but the music was great.",
    "Tell {near_name} to bring the charger when she comes.",
    "My aunt lives near Alexandria, just outside the city.",
    "I'll relax a lot more once the exams are over.",
    "How was your day? Did the meeting go well?",
    "Lexi wants to know if we're still going to {place} on {day}.",
    "Her son has dyslexia, and the new school has really helped him.",
    "Alec's car broke down again, so he's taking the bus.",
)

TELEVISION = (
    "Introducing the all new Lexus: a lexicon of luxury, built for the road ahead.",
    "Stay tuned, because after the break, Alexis reveals her secret.",
    "Welcome back to the show! Tonight three couples compete for a trip to Alaska.",
    "Electra, you can't keep running from the truth forever.",
    "And the ball goes to Alexander, he shoots, and it's in!",
    "Relax a little, on the softest sofa you will ever own.",
    "In the frozen wilderness of Alaska, a mother bear searches for food.",
    "Detective, I told you, Alex says he was at home all night.",
    "Coming up next: the election debate, live from {place}.",
    "Buy one, get one free, this weekend only, at your local store.",
    "The question for one thousand points: who was Alexander the Great's teacher?",
    "Turn off the lights, Alexis, somebody is outside.",
    "This is your captain speaking. Please relax and enjoy the flight.",
    "Previously, on the show: Electra finds the letter.",
    "They call it the electric dream, and it's coming to a city near you.",
    "The crowd is on its feet as {near_name} crosses the line in first place.",
    "Don't touch that dial, we'll be right back after these messages.",
    "Are you tired of slow internet? Switch today and save {number} percent.",
    "Alexandra, if you leave now, you will never see this house again.",
    "The penguins of the southern ocean gather in their thousands.",
    "What a finish! Alex says it was the best race of his life.",
    "Our lexicon challenge continues: spell the word necessary.",
    "The sun sets over Alaska, and the long night begins.",
    "Call now, and an operator will take your order.",
    "Tonight on the news: election results from every county.",
    "Lock the doors, Alexander, and don't open them for anyone.",
    "Relax a moment with a warm cup of our finest coffee.",
    "The winner of tonight's selection round is Alexis!",
    "Next week, the family travels to Alexandria for the wedding.",
    "He's a legend, Alexei, and legends never retire.",
    "Open the door, Alyssa, I know you're in there!",
    "A new electric toothbrush, for a smile that lasts all day.",
    "Alessa, the captain wants to see you on the bridge.",
)

GENRES = {"news": NEWS, "conversation": CONVERSATION, "television": TELEVISION}

# The scenes of the speech pieces, in turn: a piece's scene is
# SCENES[index % len(SCENES)]. Three of eight are a television.
SCENES = (
    "news",
    "conversation",
    "television with music",
    "conversation",
    "television with noise",
    "news",
    "conversation over television",
    "conversation",
)


@dataclass(frozen=True)
class Line:
    """One sentence in a speech piece: samples from `start` to `end`."""

    start: int
    end: int
    voice: str
    text: str
    # Said by the television behind the room's conversation.
    background: bool = False


@dataclass(frozen=True)
class SpeechPiece:
    """A long recording without the wake word."""

    name: str
    scene: str
    lines: tuple[Line, ...]
    speech: Speech


@dataclass(frozen=True)
class PlannedCommand:
    """What a wake command will say, and how."""

    name: str
    command: str
    voice: Voice
    breath: bool
    # The silence after "Alexa", in seconds (0.2 to 0.25 without a breath).
    pause: float
    lead: float
    tail: float
    # espeak-ng's words per minute, or Piper's tempo factor.
    speed: float


@dataclass(frozen=True)
class WakeCommand:
    """ "Alexa", then a command; sample offsets into `speech`."""

    name: str
    command: str
    voice: str
    breath: bool
    wake_start: int
    wake_end: int
    command_start: int
    command_end: int
    speech: Speech

    @property
    def wake_end_seconds(self) -> float:
        """Return where "Alexa" ends, in seconds."""
        return self.wake_end / RATE


def says_wake_word(text: str) -> bool:
    """Return whether a text has the word "Alexa" (not "Alexander" or "Alexandria")."""
    return re.search(r"\balexa(s|'s)?\b", text, re.IGNORECASE) is not None


def seeded(seed: str, *parts: object) -> random.Random:
    """Return a random generator for a seed and what it is for."""
    return random.Random(":".join([seed, *map(str, parts)]))  # noqa: S311


def _numpy_rng(seed: str, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(":".join([seed, *map(str, parts)]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def lines(genre: str, rng: random.Random) -> Iterator[str]:
    """Yield sentences of a genre without end: each template once, in a shuffled
    order, before any again; slots filled at random."""
    templates = GENRES[genre]
    while True:
        order = list(templates)
        rng.shuffle(order)
        for template in order:
            yield re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m[1]]), template)


# Speech in each voice ---------------------------------------------------------


def _samples(speech: Speech) -> Audio:
    return np.frombuffer(speech.pcm, dtype=np.int16).astype(np.float32)


def _trim(audio: Audio) -> Audio:
    """Cut the silence before and after the speech."""
    loud = np.flatnonzero(np.abs(audio) >= LOUD)
    if not len(loud):
        return audio[:0]
    return audio[loud[0] : loud[-1] + 1]


def _level(audio: Audio, level: float = LEVEL) -> Audio:
    """Scale to `level` RMS over the voiced samples."""
    voiced = audio[np.abs(audio) >= LOUD]
    if not len(voiced):
        return audio
    return audio * np.float32(level / math.sqrt(float(np.mean(voiced**2))))


def _tempo(speech: Speech, factor: float) -> Speech:
    """Speed speech up or slow it down with sox, keeping its pitch."""
    if abs(factor - 1.0) < 1e-3:
        return speech
    raw = ["-t", "raw", "-r", str(RATE), "-b", "16", "-c", "1", "-e", "signed"]
    pcm = subprocess.run(
        ["sox", "-D", *raw, "-", *raw, "-", "tempo", "-s", f"{factor:.3f}"],
        input=speech.pcm,
        capture_output=True,
        check=True,
    ).stdout
    return Speech(speech.text, pcm)


def say(maker: SpeechMaker, voice: Voice, text: str, speed: float) -> Audio:
    """Return `text` in a voice, trimmed and levelled."""
    if voice.espeak is None:
        speech = _tempo(maker.piper(text), speed)
    else:
        speech = maker.espeak(text, voice.espeak, int(speed))
    return _level(_trim(_samples(speech)))


def _speed(voice: Voice, rng: random.Random) -> float:
    if voice.espeak is None:
        return round(rng.uniform(*PIPER_TEMPO), 2)
    return float(rng.randint(*voice.speeds))


def _pcm(audio: Audio) -> bytes:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 32000:
        audio = audio * np.float32(32000 / peak)
    return np.round(audio).astype("<i2").tobytes()


# Backgrounds -----------------------------------------------------------------


def music(samples: int, rng: np.random.Generator) -> Audio:
    """Return music-like sound: a melody over chords, a bass drum and a hi-hat."""
    out = np.zeros(samples, dtype=np.float32)
    beat = int(rng.uniform(0.35, 0.6) * RATE)
    root = float(rng.uniform(110, 220))
    scale = [root * 2 ** (step / 12) for step in (0, 2, 4, 7, 9, 12, 14, 16)]
    chords = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (9, 12, 16)]
    t = np.arange(beat * 4, dtype=np.float32) / RATE
    for start in range(0, samples, beat):
        index = start // beat
        length = min(beat, samples - start)
        note = t[:beat]
        frequency = scale[int(rng.integers(len(scale)))] * 2
        envelope = np.exp(-note * float(rng.uniform(3, 8)))
        tone = np.sin(2 * np.pi * frequency * note) + 0.3 * np.sin(
            4 * np.pi * frequency * note
        )
        out[start : start + length] += (0.5 * envelope * tone)[:length]
        if index % 2 == 0:
            kick = np.sin(2 * np.pi * (50 + 60 * np.exp(-note * 30)) * note)
            out[start : start + length] += (0.8 * np.exp(-note * 18) * kick)[:length]
        else:
            hat = np.diff(rng.standard_normal(beat + 1)).astype(np.float32)
            out[start : start + length] += (0.1 * np.exp(-note * 60) * hat)[:length]
        if index % 4 == 0:
            bar = t[: min(beat * 4, samples - start)]
            chord = chords[(index // 4) % len(chords)]
            pad = sum(np.sin(2 * np.pi * root * 2 ** (s / 12) * bar) for s in chord)
            fade = np.minimum(1.0, np.minimum(bar, bar[-1] - bar) * 8)
            out[start : start + len(bar)] += 0.25 * fade * pad
    return out


def noise(samples: int, rng: np.random.Generator) -> Audio:
    """Return pink noise that swells and fades, like a crowd or rain."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples, 1 / RATE)
    spectrum /= np.sqrt(np.maximum(frequencies, 20.0))
    pink = np.fft.irfft(spectrum, samples)
    t = np.arange(samples) / RATE
    swell = 0.7 + 0.3 * np.sin(2 * np.pi * t / float(rng.uniform(4, 11)))
    return (pink * swell).astype(np.float32)


def _mix_under(speech: Audio, background: Audio, snr_db: float) -> Audio:
    """Add a background at `snr_db` below the speech (RMS over voiced samples)."""
    voiced = speech[np.abs(speech) >= LOUD]
    speech_rms = math.sqrt(float(np.mean(voiced**2))) if len(voiced) else LEVEL
    background_rms = math.sqrt(float(np.mean(background**2))) or 1.0
    gain = speech_rms / background_rms / 10 ** (snr_db / 20)
    return speech + background * np.float32(gain)


# Speech pieces ----------------------------------------------------------------


def _track(
    maker: SpeechMaker,
    rng: random.Random,
    samples: int,
    genres: tuple[str, ...],
    voices: tuple[Voice, ...],
    gaps: tuple[float, float],
    *,
    background: bool = False,
    gain: float = 1.0,
) -> tuple[Audio, list[Line]]:
    """Return sentences one after another until `samples` are filled."""
    texts = {genre: lines(genre, rng) for genre in genres}
    parts: list[Audio] = []
    said: list[Line] = []
    position = int(rng.uniform(*gaps) * RATE)
    parts.append(np.zeros(position, dtype=np.float32))
    while position < samples:
        voice = rng.choice(voices)
        text = next(texts[rng.choice(genres)])
        audio = say(maker, voice, text, _speed(voice, rng)) * np.float32(gain)
        said.append(Line(position, position + len(audio), voice.name, text, background))
        gap = np.zeros(int(rng.uniform(*gaps) * RATE), dtype=np.float32)
        parts.extend((audio, gap))
        position += len(audio) + len(gap)
    return np.concatenate(parts), said


def _piece(maker: SpeechMaker, index: int, seconds: float, seed: str) -> SpeechPiece:
    """Build one speech piece: its scene by its index, the rest by the seed."""
    rng = seeded(seed, "piece", index)
    scene = SCENES[index % len(SCENES)]
    samples = int(seconds * RATE)
    if scene == "news":
        anchor, reporter = rng.sample(SPEECH_VOICES, 2)
        audio, said = _track(
            maker,
            rng,
            samples,
            ("news", "news", "news", "television"),
            (anchor, anchor, anchor, reporter),
            (0.3, 0.7),
        )
    elif scene == "conversation":
        voices = tuple(rng.sample(SPEECH_VOICES, rng.choice((2, 3))))
        audio, said = _track(
            maker, rng, samples, ("conversation",), voices, (0.15, 0.9)
        )
    elif scene.startswith("television with"):
        voices = tuple(rng.sample(SPEECH_VOICES, 3))
        audio, said = _track(
            maker,
            rng,
            samples,
            ("television", "television", "news"),
            voices,
            (0.2, 0.8),
        )
        make = music if scene.endswith("music") else noise
        bed = make(len(audio), _numpy_rng(seed, "bed", index))
        audio = _mix_under(audio, bed, rng.uniform(3.0, 12.0))
    else:
        # A conversation in the room, the television's voices behind it.
        room = tuple(rng.sample(SPEECH_VOICES, 2))
        audio, said = _track(maker, rng, samples, ("conversation",), room, (0.4, 1.5))
        tv_voices = tuple(rng.sample(SPEECH_VOICES, 2))
        tv, tv_said = _track(
            maker,
            rng,
            len(audio),
            ("television", "news"),
            tv_voices,
            (0.1, 0.5),
            background=True,
            gain=10 ** (-rng.uniform(3.0, 9.0) / 20),
        )
        audio = audio + tv[: len(audio)]
        said = sorted(
            said
            + [
                Line(line.start, min(line.end, len(audio)), line.voice, line.text, True)
                for line in tv_said
                if line.start < len(audio)
            ],
            key=lambda line: line.start,
        )
        audio = _mix_under(
            audio, music(len(audio), _numpy_rng(seed, "bed", index)), 18.0
        )
    audio = audio * np.float32(10 ** (rng.uniform(-4.0, 2.0) / 20))
    text = " ".join(line.text for line in said)
    return SpeechPiece(
        f"speech-{index + 1:02d}", scene, tuple(said), Speech(text, _pcm(audio))
    )


def piece_count(minutes: float = MINUTES, piece_seconds: float = PIECE_SECONDS) -> int:
    """Return how many pieces make `minutes` (each is at least `piece_seconds`)."""
    return math.ceil(minutes * 60 / piece_seconds)


def speech_pieces(
    maker: SpeechMaker,
    minutes: float = MINUTES,
    piece_seconds: float = PIECE_SECONDS,
    seed: str = SEED,
) -> Iterator[SpeechPiece]:
    """Yield speech pieces without the wake word, at least `minutes` in all."""
    for index in range(piece_count(minutes, piece_seconds)):
        yield _piece(maker, index, piece_seconds, seed)


# Wake commands ----------------------------------------------------------------


def command_plan(count: int = COMMAND_COUNT, seed: str = SEED) -> list[PlannedCommand]:
    """Return what each wake command says and how: the voices in turn, each
    with and without a breath in turn, the commands shuffled."""
    rng = seeded(seed, "commands")
    texts: list[str] = []
    while len(texts) < count:
        batch = list(COMMANDS)
        rng.shuffle(batch)
        texts.extend(batch)
    plan = []
    for index in range(count):
        voice = WAKE_VOICES[index % len(WAKE_VOICES)]
        breath = (index // len(WAKE_VOICES)) % 2 == 0
        plan.append(
            PlannedCommand(
                name=f"wake-{index + 1:02d}",
                command=texts[index],
                voice=voice,
                breath=breath,
                pause=round(
                    rng.uniform(0.4, 0.6) if breath else rng.uniform(0.2, 0.25), 3
                ),
                lead=round(rng.uniform(2.0, 3.0), 3),
                tail=round(rng.uniform(3.0, 4.0), 3),
                speed=_speed(voice, rng),
            )
        )
    return plan


def wake_command(maker: SpeechMaker, planned: PlannedCommand) -> WakeCommand:
    """Say one planned wake command."""
    voice, speed = planned.voice, planned.speed
    wake = say(maker, voice, WAKE_WORD, speed)
    command = say(maker, voice, planned.command, speed)
    lead = np.zeros(int(planned.lead * RATE), dtype=np.float32)
    pause = np.zeros(int(planned.pause * RATE), dtype=np.float32)
    tail = np.zeros(int(planned.tail * RATE), dtype=np.float32)
    wake_start = len(lead)
    wake_end = wake_start + len(wake)
    command_start = wake_end + len(pause)
    audio = np.concatenate([lead, wake, pause, command, tail])
    return WakeCommand(
        name=planned.name,
        command=planned.command,
        voice=voice.name,
        breath=planned.breath,
        wake_start=wake_start,
        wake_end=wake_end,
        command_start=command_start,
        command_end=command_start + len(command),
        speech=Speech(f"{WAKE_WORD}, {planned.command}", _pcm(audio)),
    )


def wake_commands(
    maker: SpeechMaker, count: int = COMMAND_COUNT, seed: str = SEED
) -> Iterator[WakeCommand]:
    """Yield the wake commands."""
    for planned in command_plan(count, seed):
        yield wake_command(maker, planned)


def corpus(
    maker: SpeechMaker,
    minutes: float = MINUTES,
    commands: int = COMMAND_COUNT,
    seed: str = SEED,
) -> Iterator[SpeechPiece | WakeCommand]:
    """Yield the whole corpus: the speech pieces, then the wake commands."""
    yield from speech_pieces(maker, minutes, seed=seed)
    yield from wake_commands(maker, commands, seed)


# Writing it out ---------------------------------------------------------------


def manifest_entry(item: SpeechPiece | WakeCommand) -> dict[str, object]:
    """Return what the manifest says of a piece or command (all but its audio)."""
    entry: dict[str, object] = {
        field: value for field, value in asdict(item).items() if field != "speech"
    }
    entry["file"] = f"{item.name}.wav"
    entry["seconds"] = round(item.speech.seconds, 3)
    if isinstance(item, WakeCommand):
        entry["wake_end_seconds"] = round(item.wake_end_seconds, 4)
    return entry


def write(
    out: Path, items: Iterator[SpeechPiece | WakeCommand], seed: str = SEED
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Write each item as a WAV file, and manifest.json; return its entries,
    speech pieces and wake commands."""
    out.mkdir(parents=True, exist_ok=True)
    pieces: list[dict[str, object]] = []
    commands: list[dict[str, object]] = []
    seconds = 0.0
    for item in items:
        (out / f"{item.name}.wav").write_bytes(item.speech.wav())
        entry = manifest_entry(item)
        if isinstance(item, WakeCommand):
            commands.append(entry)
        else:
            pieces.append(entry)
            seconds += item.speech.seconds
        print(f"{item.name}: {item.speech.seconds:.1f} s", flush=True)
    manifest = {
        "rate": RATE,
        "seed": seed,
        "wake_word": WAKE_WORD,
        "speech_seconds": round(seconds, 3),
        "speech": pieces,
        "commands": commands,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return pieces, commands


def main() -> None:
    """Write the corpus to a folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=MINUTES)
    parser.add_argument("--commands", type=int, default=COMMAND_COUNT)
    parser.add_argument("--seed", default=SEED)
    parser.add_argument(
        "--piper-port", type=int, help="a running Piper server (default: start one)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=PROJECT / ".cache" / "speech",
        help="where the syntheses are kept (default: .cache/speech)",
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    server = None
    if args.piper_port is None:
        logs = Path(tempfile.mkdtemp(prefix="wake-corpus-"))
        server = launch.start_ready("piper", "piper", launch.free_port(), logs)
    try:
        port = args.piper_port if server is None else server.port
        maker = SpeechMaker(port, args.cache)
        items = corpus(maker, args.minutes, args.commands, args.seed)
        pieces, commands = write(args.out, items, args.seed)
        minutes = sum(float(str(p["seconds"])) for p in pieces) / 60
        print(
            f"{len(pieces)} speech pieces ({minutes:.1f} min),"
            f" {len(commands)} wake commands in {args.out}"
        )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
