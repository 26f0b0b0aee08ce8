"""A small Wyoming wake-word server on bundled microWakeWord and openWakeWord models.

The published Wyoming wake-word servers do not run on Python 3.14 as released:
wyoming-openwakeword needs tflite-runtime (no wheels past 3.11) and
wyoming-ovos-wakeword fails with the microWakeWord plugin on every chunk. This
server speaks the same protocol as they do (Describe/Info, Detect, AudioStart,
AudioChunk, AudioStop, Detection/NotDetected) with the models that ship inside
pymicro-wakeword and, with `--engine open` or `--engine both`, inside
pyopen-wakeword, so nothing is downloaded.

microWakeWord models keep their names ("alexa", "okay_nabu", ...); the
openWakeWord ones end in "_oww" ("alexa_oww", ...) with the same phrase, so a
server with both engines offers two models for "Alexa" and a client picks one
by name. A Detect without names listens for "Alexa" and "Okay Nabu" on each
engine served.

Run: python -m scripts.servers.wakeword --uri tcp://127.0.0.1:10400 [--engine both]
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from functools import partial
import logging
import threading
import time
from typing import Protocol

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.wake import Detect, Detection, NotDetected

_LOGGER = logging.getLogger("wakeword")

RATE = 16000

# Seconds after a detection during which the same model stays quiet, so that
# one spoken wake word gives one Detection.
REFRACTORY_SECONDS = 2.0

MICRO, OPEN = "micro", "open"
ENGINES = {"micro": (MICRO,), "open": (OPEN,), "both": (MICRO, OPEN)}
OPEN_SUFFIX = "_oww"
# An openWakeWord model fires on a probability above this, as in
# wyoming-openwakeword's default.
OPEN_THRESHOLD = 0.5
# Listened for when a Detect names no model (or there is no Detect).
DEFAULT_MODELS = ("alexa", "okay_nabu")

MICRO_ATTRIBUTION = Attribution(name="Kevin Ahrendt", url="")
OPEN_ATTRIBUTION = Attribution(
    name="David Scripka", url="https://github.com/dscripka/openWakeWord"
)


@dataclass(frozen=True)
class Served:
    """One wake word model this server can run."""

    name: str
    engine: str
    model: str
    phrase: str
    languages: tuple[str, ...]


def open_models() -> list[str]:
    """Return the openWakeWord models bundled with pyopen-wakeword."""
    from pyopen_wakeword import Model as OpenModel  # noqa: PLC0415

    return [model.value for model in OpenModel]


def catalogue(engines: tuple[str, ...]) -> dict[str, Served]:
    """Return every model of the engines, by Wyoming name."""
    served: dict[str, Served] = {}
    if MICRO in engines:
        for model in Model:
            word = MicroWakeWord.from_builtin(model)
            served[model.value] = Served(
                model.value,
                MICRO,
                model.value,
                word.wake_word,
                tuple(word.trained_languages),
            )
            word.close()
    if OPEN in engines:
        for model in open_models():
            name = model + OPEN_SUFFIX
            phrase = model.replace("_", " ").title()
            served[name] = Served(name, OPEN, model, phrase, ("en",))
    return served


def build_info(served: list[Served], engines: tuple[str, ...]) -> Info:
    """Describe the models served, as one program (clients read the first)."""
    models = [
        WakeModel(
            name=model.name,
            attribution=MICRO_ATTRIBUTION
            if model.engine == MICRO
            else OPEN_ATTRIBUTION,
            installed=True,
            description=model.phrase
            if model.engine == MICRO
            else f"{model.phrase} (openWakeWord)",
            version="2" if model.engine == MICRO else "1",
            languages=list(model.languages),
            phrase=model.phrase,
        )
        for model in served
    ]
    programs = {
        MICRO: ("microwakeword", "microWakeWord (pymicro-wakeword)", "2.5.0"),
        OPEN: ("openwakeword", "openWakeWord (pyopen-wakeword)", "1.1.0"),
    }
    first = programs[engines[0]]
    return Info(
        wake=[
            WakeProgram(
                name="-".join(programs[e][0] for e in engines),
                description=", ".join(programs[e][1] for e in engines),
                attribution=MICRO_ATTRIBUTION
                if engines[0] == MICRO
                else OPEN_ATTRIBUTION,
                installed=True,
                version=first[2],
                models=models,
            )
        ]
    )


class Stream(Protocol):
    """The models of one engine over one audio stream."""

    # Too slow to run on the event loop.
    slow: bool

    def process(self, audio: bytes) -> list[tuple[str, float]]:
        """Feed 16 kHz 16-bit mono audio; return (name, seconds of audio) fired."""

    def close(self) -> None:
        """Release the models."""


@dataclass
class _Refractory:
    """One Detection per spoken wake word: a model is quiet for a while after one."""

    quiet_until: dict[str, float] = field(default_factory=dict)

    def fire(self, name: str, seconds: float) -> bool:
        if seconds < self.quiet_until.get(name, float("-inf")):
            return False
        self.quiet_until[name] = seconds + REFRACTORY_SECONDS
        return True


class MicroStream:
    """microWakeWord models on shared 10 ms features."""

    slow = False

    def __init__(self, models: dict[str, str]) -> None:
        """Load the models, Wyoming name to bundled model."""
        self._detectors = {
            name: MicroWakeWord.from_builtin(Model(model))
            for name, model in models.items()
        }
        self._features = MicroWakeWordFeatures()
        self._refractory = _Refractory()
        self._seconds = 0.0

    def process(self, audio: bytes) -> list[tuple[str, float]]:
        """Feed audio; return the detections."""
        fired = []
        for features in self._features.process_streaming(audio):
            self._seconds += 0.01
            for name, detector in self._detectors.items():
                if detector.process_streaming(features) and self._refractory.fire(
                    name, self._seconds
                ):
                    fired.append((name, self._seconds))
        return fired

    def close(self) -> None:
        """Release the models."""
        for detector in self._detectors.values():
            detector.close()
        self._detectors.clear()


class OpenStream:
    """openWakeWord models on shared 80 ms embeddings.

    The features keep 8 s of silence before the stream's first sample, so
    that the models have a full window at once. A probability belongs to the
    embedding of the audio up to the end of the latest mel window, which the
    features tell by the samples they have not used yet.
    """

    # About 5 ms for each 80 ms of audio, and 0.4 s for the first chunk
    # (the 8 s of silence before it), on one core.
    slow = True

    # A mel window is 1760 samples, advanced by 1280 (80 ms).
    _WINDOW_OVERHANG = 1760 - 1280

    def __init__(self, models: dict[str, str]) -> None:
        """Load the models, Wyoming name to bundled model."""
        from pyopen_wakeword import (  # noqa: PLC0415
            Model as OpenModel,
            OpenWakeWord,
            OpenWakeWordFeatures,
        )

        self._detectors = {
            name: OpenWakeWord.from_builtin(OpenModel(model))
            for name, model in models.items()
        }
        self._features = OpenWakeWordFeatures.from_builtin()
        self._refractory = _Refractory()
        self._samples = 0

    def process(self, audio: bytes) -> list[tuple[str, float]]:
        """Feed audio; return the detections."""
        fired = []
        self._samples += len(audio) // 2
        for embedding in self._features.process_streaming(audio):
            end = (
                self._samples - self._features.new_audio_samples + self._WINDOW_OVERHANG
            )
            seconds = max(0.0, end / RATE)
            for name, detector in self._detectors.items():
                # Run the generator to its end: it moves the model's window.
                probabilities = list(detector.process_streaming(embedding))
                if (
                    probabilities
                    and max(probabilities) > OPEN_THRESHOLD
                    and self._refractory.fire(name, seconds)
                ):
                    fired.append((name, seconds))
        return fired

    def close(self) -> None:
        """Release the models."""
        for detector in self._detectors.values():
            detector.close()
        self._detectors.clear()
        self._features.close()


class WakeWordHandler(AsyncEventHandler):
    """One client connection: one audio stream."""

    def __init__(
        self, info: Info, served: dict[str, Served], *args: object, **kwargs: object
    ) -> None:
        """Keep the shared Info and models; models are loaded per stream."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._info = info
        self._served = served
        self._converter = AudioChunkConverter(rate=RATE, width=2, channels=1)
        self._names: list[str] = _default_names(served)
        self._streams: list[Stream] = []
        # Held while the models run, in a thread for slow ones, and while
        # they are released.
        self._running = threading.Lock()
        self._loaded = False
        self._detected = False

    def _load(self) -> None:
        self._close_models()
        by_engine: dict[str, dict[str, str]] = {}
        for name in self._names:
            model = self._served.get(name)
            if model is None:
                _LOGGER.warning("Unknown wake word model: %s", name)
                continue
            by_engine.setdefault(model.engine, {})[name] = model.model
        if MICRO in by_engine:
            self._streams.append(MicroStream(by_engine[MICRO]))
        if OPEN in by_engine:
            self._streams.append(OpenStream(by_engine[OPEN]))
        self._loaded = True
        self._detected = False

    def _close_models(self) -> None:
        with self._running:
            for stream in self._streams:
                stream.close()
            self._streams.clear()
        self._loaded = False

    async def handle_event(self, event: Event) -> bool:
        """Answer one protocol event."""
        if Describe.is_type(event.type):
            await self.write_event(self._info.event())
            return True
        if Detect.is_type(event.type):
            detect = Detect.from_event(event)
            if detect.names:
                self._names = list(detect.names)
            return True
        if AudioStart.is_type(event.type):
            self._load()
            return True
        if AudioChunk.is_type(event.type):
            if not self._loaded:
                self._load()
            chunk = self._converter.convert(AudioChunk.from_event(event))
            await self._process(chunk.audio)
            return True
        if AudioStop.is_type(event.type):
            if not self._detected:
                await self.write_event(NotDetected().event())
            self._close_models()
            return False
        return True

    def _run(self, streams: list[Stream], audio: bytes) -> list[tuple[str, float]]:
        with self._running:
            return [hit for stream in streams for hit in stream.process(audio)]

    async def _process(self, audio: bytes) -> None:
        streams = list(self._streams)
        if any(stream.slow for stream in streams):
            # Off the event loop, so that other connections go on meanwhile.
            fired = await asyncio.to_thread(self._run, streams, audio)
        else:
            fired = self._run(streams, audio)
        for name, seconds in sorted(fired, key=lambda hit: hit[1]):
            self._detected = True
            _LOGGER.info("Detected %s at %.2f s", name, seconds)
            await self.write_event(
                Detection(name=name, timestamp=int(seconds * 1000)).event()
            )

    async def disconnect(self) -> None:
        """Release the models when the client goes away."""
        self._close_models()


def _default_names(served: dict[str, Served]) -> list[str]:
    names = [name for name, model in served.items() if model.model in DEFAULT_MODELS]
    return names or list(served)


async def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", default="tcp://127.0.0.1:10400")
    parser.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="micro",
        help="microWakeWord (default), openWakeWord (names end in _oww), or both",
    )
    parser.add_argument(
        "--model",
        action="append",
        help="offer only these models (default: all bundled ones of the engines)",
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO)
    engines = ENGINES[args.engine]
    served = catalogue(engines)
    if unknown := set(args.model or ()) - set(served):
        parser.error(f"unknown models {sorted(unknown)}; known: {sorted(served)}")
    offered = (
        [served[name] for name in args.model] if args.model else list(served.values())
    )
    info = build_info(offered, engines)
    server = AsyncServer.from_uri(args.uri)
    _LOGGER.info("Ready on %s (%s)", args.uri, time.strftime("%H:%M:%S"))
    await server.run(partial(WakeWordHandler, info, served))


if __name__ == "__main__":
    asyncio.run(main())
