"""A small Wyoming wake-word server on pymicro-wakeword's bundled models.

The published Wyoming wake-word servers do not run on Python 3.14 as released:
wyoming-openwakeword needs tflite-runtime (no wheels past 3.11) and
wyoming-ovos-wakeword fails with the microWakeWord plugin on every chunk. This
server speaks the same protocol as they do (Describe/Info, Detect, AudioStart,
AudioChunk, AudioStop, Detection/NotDetected) with the models that ship inside
pymicro-wakeword, so nothing is downloaded.

Run: python -m scripts.servers.wakeword --uri tcp://127.0.0.1:10400
"""

from __future__ import annotations

import argparse
import asyncio
from functools import partial
import logging
import time

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.wake import Detect, Detection, NotDetected

_LOGGER = logging.getLogger("wakeword")

# Seconds after a detection during which the same model stays quiet, so that
# one spoken wake word gives one Detection.
REFRACTORY_SECONDS = 2.0


def build_info(served: list[Model]) -> Info:
    """Describe the models served."""
    models = []
    for model in served:
        word = MicroWakeWord.from_builtin(model)
        models.append(
            WakeModel(
                name=model.value,
                attribution=Attribution(name="Kevin Ahrendt", url=""),
                installed=True,
                description=word.wake_word,
                version="2",
                languages=list(word.trained_languages),
                phrase=word.wake_word,
            )
        )
        word.close()
    return Info(
        wake=[
            WakeProgram(
                name="microwakeword",
                description="microWakeWord (pymicro-wakeword)",
                attribution=Attribution(name="Kevin Ahrendt", url=""),
                installed=True,
                version="2.5.0",
                models=models,
            )
        ]
    )


class WakeWordHandler(AsyncEventHandler):
    """One client connection: one audio stream."""

    def __init__(self, info: Info, *args: object, **kwargs: object) -> None:
        """Keep the shared Info; models are loaded per stream."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._info = info
        self._converter = AudioChunkConverter(rate=16000, width=2, channels=1)
        self._names: list[str] = [Model.ALEXA.value, Model.OKAY_NABU.value]
        self._detectors: dict[str, MicroWakeWord] = {}
        self._features = MicroWakeWordFeatures()
        self._quiet_until: dict[str, float] = {}
        self._audio_seconds = 0.0
        self._detected = False

    def _load(self) -> None:
        self._close_models()
        for name in self._names:
            try:
                self._detectors[name] = MicroWakeWord.from_builtin(Model(name))
            except ValueError:
                _LOGGER.warning("Unknown wake word model: %s", name)
        self._features = MicroWakeWordFeatures()
        self._quiet_until.clear()
        self._audio_seconds = 0.0
        self._detected = False

    def _close_models(self) -> None:
        for detector in self._detectors.values():
            detector.close()
        self._detectors.clear()

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
            if not self._detectors:
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

    async def _process(self, audio: bytes) -> None:
        for features in self._features.process_streaming(audio):
            self._audio_seconds += 0.01
            for name, detector in self._detectors.items():
                if not detector.process_streaming(features):
                    continue
                if self._audio_seconds < self._quiet_until.get(name, 0.0):
                    continue
                self._quiet_until[name] = self._audio_seconds + REFRACTORY_SECONDS
                self._detected = True
                _LOGGER.info("Detected %s at %.2f s", name, self._audio_seconds)
                await self.write_event(
                    Detection(
                        name=name, timestamp=int(self._audio_seconds * 1000)
                    ).event()
                )

    async def disconnect(self) -> None:
        """Release the models when the client goes away."""
        self._close_models()


async def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", default="tcp://127.0.0.1:10400")
    parser.add_argument(
        "--model",
        action="append",
        choices=[m.value for m in Model],
        help="serve only these models (default: all bundled ones)",
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO)
    info = build_info([Model(m) for m in args.model] if args.model else list(Model))
    server = AsyncServer.from_uri(args.uri)
    _LOGGER.info("Ready on %s (%s)", args.uri, time.strftime("%H:%M:%S"))
    await server.run(partial(WakeWordHandler, info))


if __name__ == "__main__":
    asyncio.run(main())
