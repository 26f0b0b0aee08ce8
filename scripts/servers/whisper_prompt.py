"""A minimal Wyoming speech-to-text server that takes Whisper's initial prompt per request.

    $LV_SPEECH_VENV/bin/python -m scripts.servers.whisper_prompt \\
        --model-dir DIR --port P

It runs faster-whisper's WhisperModel directly (Whisper tiny.en from the
speech venv, see scripts/servers/launch.py) on the CPU with int8 weights and
wyoming-faster-whisper's default beam size. A Transcribe event whose context
holds "initial_prompt" has that text passed to Whisper as `initial_prompt`;
without it Whisper gets no prompt. Only for measurements (scripts/hearing.py
prompt): one request at a time, no VAD, no streaming.
"""

from __future__ import annotations

import argparse
import asyncio
from functools import partial
import logging
import platform
from typing import Any

from faster_whisper import WhisperModel
import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.server import AsyncEventHandler, AsyncServer

_LOGGER = logging.getLogger("whisper_prompt")
RATE = 16000
LANGUAGE = "en"


def default_beam_size() -> int:
    """Return wyoming-faster-whisper's automatic beam size: 1 on ARM, else 5."""
    machine = platform.machine().lower()
    return 1 if machine.startswith(("arm", "aarch")) else 5


def server_info(model_name: str) -> Info:
    """Describe one English Whisper model."""
    by = Attribution(name="OpenAI", url="https://github.com/openai/whisper")
    model = AsrModel(
        name=model_name,
        attribution=by,
        installed=True,
        description=f"Whisper {model_name} (faster-whisper, int8)",
        version=None,
        languages=[LANGUAGE],
    )
    return Info(
        asr=[
            AsrProgram(
                name="whisper-prompt",
                attribution=by,
                installed=True,
                description="faster-whisper with a per-request initial prompt",
                version="1",
                models=[model],
            )
        ]
    )


class Transcriber:
    """Whisper, one transcription at a time."""

    def __init__(self, model: WhisperModel, beam_size: int) -> None:
        """Use a loaded model."""
        self.model = model
        self.beam_size = beam_size
        self.lock = asyncio.Lock()

    def _run(self, pcm: bytes, prompt: str | None) -> str:
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        segments, _info = self.model.transcribe(
            audio,
            language=LANGUAGE,
            beam_size=self.beam_size,
            initial_prompt=prompt,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    async def transcribe(self, pcm: bytes, prompt: str | None) -> str:
        """Return the text of 16 kHz 16-bit mono audio."""
        async with self.lock:
            return await asyncio.to_thread(self._run, pcm, prompt)


class PromptHandler(AsyncEventHandler):
    """One client: Describe, or Transcribe and its audio."""

    def __init__(
        self, info: Info, transcriber: Transcriber, *args: Any, **kwargs: Any
    ) -> None:
        """Serve with a shared transcriber."""
        super().__init__(*args, **kwargs)
        self.info = info
        self.transcriber = transcriber
        self.converter = AudioChunkConverter(rate=RATE, width=2, channels=1)
        self.prompt: str | None = None
        self.audio = bytearray()

    async def handle_event(self, event: Event) -> bool:
        """Answer one event; keep the connection open."""
        if Describe.is_type(event.type):
            await self.write_event(self.info.event())
        elif Transcribe.is_type(event.type):
            context = Transcribe.from_event(event).context or {}
            prompt = context.get("initial_prompt")
            self.prompt = prompt if isinstance(prompt, str) and prompt else None
        elif AudioStart.is_type(event.type):
            self.audio.clear()
        elif AudioChunk.is_type(event.type):
            chunk = self.converter.convert(AudioChunk.from_event(event))
            self.audio += chunk.audio
        elif AudioStop.is_type(event.type):
            text = await self.transcriber.transcribe(bytes(self.audio), self.prompt)
            _LOGGER.debug("prompt %r: %r", self.prompt, text)
            await self.write_event(Transcript(text=text, language=LANGUAGE).event())
            self.audio.clear()
            self.prompt = None
        return True


def main() -> None:
    """Load the model and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True, help="CTranslate2 Whisper model")
    parser.add_argument("--model-name", default="tiny.en")
    parser.add_argument("--port", type=int, help="serve on tcp://127.0.0.1:PORT")
    parser.add_argument("--uri", help="or on this Wyoming URI")
    parser.add_argument("--beam-size", type=int, default=0, help="0: automatic")
    parser.add_argument("--cpu-threads", type=int, default=4)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    if (args.port is None) == (args.uri is None):
        parser.error("give --port or --uri")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO)
    model = WhisperModel(
        args.model_dir,
        device="cpu",
        compute_type="int8",
        cpu_threads=args.cpu_threads,
        local_files_only=True,
    )
    beam_size = args.beam_size if args.beam_size > 0 else default_beam_size()
    transcriber = Transcriber(model, beam_size)
    uri = args.uri or f"tcp://127.0.0.1:{args.port}"
    _LOGGER.info("Ready on %s (beam size %s)", uri, beam_size)
    server = AsyncServer.from_uri(uri)
    asyncio.run(
        server.run(partial(PromptHandler, server_info(args.model_name), transcriber))
    )


if __name__ == "__main__":
    main()
