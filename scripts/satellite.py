"""A real Wyoming satellite with a pretend microphone and speaker, for tests.

wyoming-satellite 1.0.0, the satellite software people run on a Raspberry Pi,
from its own venv (requirements_satellite.txt; scripts/setup makes it and
scripts/env.sh names it LV_SATELLITE_VENV), so run this file with that
venv's python:

    $LV_SATELLITE_VENV/bin/python scripts/satellite.py run --port 10700 \\
        --mic MIC_DIR --snd SND_DIR [--events FILE] [--name NAME] \\
        [-- MORE_SATELLITE_OPTIONS]

Home Assistant adds it through the core `wyoming` integration (host and
port). Without a wake word service of its own it streams its microphone all
the time and Home Assistant listens for the wake word.

The other modes are what `run` starts as the satellite's microphone and
speaker programs (raw 16 kHz, 16-bit mono on stdout and stdin) and as its
event commands:

    mic MIC_DIR   play the WAV files that appear in MIC_DIR (16 kHz, 16-bit,
                  mono), in name order, in real time, in 20 ms chunks, and
                  silence between them. Write a file as NAME.wav.part and
                  rename it to NAME.wav once complete; each is deleted when it
                  has been played to the end.
    snd SND_DIR   write one played reply (the satellite starts the program per
                  reply) to SND_DIR/reply-<ns>.raw, renamed from .raw.part when
                  the reply has ended.
    event FILE KIND
                  append {"event": KIND, "text": STDIN} as a JSON line to FILE:
                  with --events, the satellite runs it when Home Assistant
                  starts listening for the wake word (detect), has heard it
                  (detection, the wake word), has the transcript (transcript)
                  and starts to speak (synthesize, the text of the reply).

Two small fixes make 1.0.0 (and its wyoming 1.4.1) work with Home Assistant
2026, which expects newer satellites (see apply_fixes); a signal ends it at
once (see exit_now).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
import shlex
import shutil
import signal
import sys
import time
from typing import NoReturn
import wave

from wyoming.event import Event
from wyoming.pipeline import RunPipeline
from wyoming_satellite.__main__ import SatelliteEventHandler, main as satellite_main
from wyoming_satellite.satellite import AlwaysStreamingSatellite, SatelliteBase

RATE = 16000
WIDTH = 2
CHUNK_SECONDS = 0.02
CHUNK_BYTES = int(RATE * CHUNK_SECONDS) * WIDTH
# The satellite's event commands that --events logs.
EVENTS = ("detect", "detection", "transcript", "synthesize")
# A microphone that fell this far behind (a stalled machine) starts afresh
# instead of sending the missed time all at once.
MAX_LAG = 1.0


def log(message: str) -> None:
    """Write a line to stderr, which ends up in the satellite's log."""
    print(f"satellite.py: {message}", file=sys.stderr, flush=True)


# --- the fixes -------------------------------------------------------------


def answer_pings() -> None:
    """Answer Home Assistant's `ping` with a `pong` carrying the same text.

    Home Assistant pings a connected satellite and drops the connection when
    the satellite sends nothing for 5 s; wyoming 1.4.1 has no ping/pong, so
    1.0.0 ignores the ping. Streaming all the time, as here, its audio keeps
    the connection alive anyway; a satellite that goes quiet (a local wake
    word with --wake-uri, or --vad) would be disconnected over and over.
    """
    handle_event = SatelliteEventHandler.handle_event

    async def handle_event_answering_pings(
        self: SatelliteEventHandler, event: Event
    ) -> bool:
        if event.type == "ping":
            text = (event.data or {}).get("text")
            await self.write_event(Event(type="pong", data={"text": text}))
            return True
        return bool(await handle_event(self, event))

    SatelliteEventHandler.handle_event = handle_event_answering_pings  # type: ignore[method-assign]


def restart_after_each_command() -> None:
    """Ask for `restart_on_end` in the `run-pipeline` an always-streaming satellite sends.

    Such a satellite sends `run-pipeline` once, when Home Assistant connects.
    Home Assistant then runs the pipeline again after each command only if the
    request says `restart_on_end: true`, a field wyoming 1.4.1 does not have;
    without it the satellite hears one command and no other.
    """
    event_to_server = SatelliteBase.event_to_server

    async def event_to_server_restarting(self: SatelliteBase, event: Event) -> None:
        if RunPipeline.is_type(event.type):
            event = Event(
                type=event.type,
                data={**(event.data or {}), "restart_on_end": True},
                payload=event.payload,
            )
        await event_to_server(self, event)

    AlwaysStreamingSatellite.event_to_server = event_to_server_restarting  # type: ignore[method-assign]


def apply_fixes() -> None:
    """Patch wyoming-satellite 1.0.0 in this process; its files stay as installed."""
    answer_pings()
    restart_after_each_command()


# --- the satellite -----------------------------------------------------------


def exit_now(signum: int, frame: object) -> NoReturn:
    """End the process at once on SIGTERM or SIGINT.

    The satellite's own stop never finishes in 1.0.0 (its main loop ends as
    soon as the state is STOPPING, before it disconnects, while stop() waits
    for STOPPED), so it ends as it would under systemd: the microphone program
    ends when its pipe breaks, a speaker program when its input ends.
    """
    log(f"stopped by signal {signum}")
    os._exit(0)


def run(args: argparse.Namespace) -> None:
    """Start the satellite with this file's mic and snd modes as its programs."""
    me = [sys.executable, str(Path(__file__).resolve())]
    for folder in (args.mic, args.snd):
        folder.mkdir(parents=True, exist_ok=True)
    extra = [a for a in args.extra if a != "--"]
    argv = [
        "--uri",
        f"tcp://{args.host}:{args.port}",
        "--name",
        args.name,
        "--no-zeroconf",
        "--mic-command",
        shlex.join([*me, "mic", str(args.mic.resolve())]),
        "--snd-command",
        shlex.join([*me, "snd", str(args.snd.resolve())]),
        "--snd-command-rate",
        str(RATE),
    ]
    if args.events:
        args.events.parent.mkdir(parents=True, exist_ok=True)
        for kind in EVENTS:
            argv += [
                f"--{kind}-command",
                shlex.join([*me, "event", str(args.events.resolve()), kind]),
            ]
    argv += extra
    apply_fixes()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, exit_now)
    sys.argv = ["wyoming_satellite", *argv]
    asyncio.run(satellite_main())


# --- the microphone and the speaker ----------------------------------------


def read_pcm(path: Path) -> bytes:
    """Return the samples of a 16 kHz, 16-bit mono WAV file."""
    with wave.open(str(path), "rb") as reader:
        form = (reader.getframerate(), reader.getsampwidth(), reader.getnchannels())
        if form != (RATE, WIDTH, 1):
            raise ValueError(f"{path}: {form}, not 16 kHz 16-bit mono")
        return reader.readframes(reader.getnframes())


def microphone(folder: Path) -> None:
    """Write the queued WAV files to stdout in real time, silence in between."""
    out = sys.stdout.buffer
    playing: Path | None = None
    audio = b""
    due = time.monotonic()
    try:
        while True:
            if not audio:
                if playing is not None:
                    playing.unlink(missing_ok=True)
                    log(f"played {playing.name}")
                    playing = None
                if queued := sorted(folder.glob("*.wav")):
                    playing = queued[0]
                    audio = read_pcm(playing)
                    log(f"playing {playing.name} ({len(audio) / RATE / WIDTH:.2f} s)")
            chunk, audio = audio[:CHUNK_BYTES], audio[CHUNK_BYTES:]
            out.write(chunk.ljust(CHUNK_BYTES, b"\0"))
            out.flush()
            due += CHUNK_SECONDS
            now = time.monotonic()
            if now - due > MAX_LAG:
                due = now
            time.sleep(max(0.0, due - now))
    except BrokenPipeError, KeyboardInterrupt:
        pass  # the satellite stopped reading: stop too


def speaker(folder: Path) -> None:
    """Write what comes in on stdin, one reply, to a file of its own."""
    part = folder / f"reply-{time.time_ns()}.raw.part"
    with part.open("wb") as file:
        shutil.copyfileobj(sys.stdin.buffer, file)
    done = part.with_suffix("")
    part.rename(done)
    log(f"wrote {done.name} ({done.stat().st_size / RATE / WIDTH:.2f} s)")


def event(file: Path, kind: str) -> None:
    """Append the event and the text that came with it on stdin to `file`."""
    text = sys.stdin.read()
    with file.open("a", encoding="utf-8") as out:
        out.write(
            json.dumps({"event": kind, "text": text, "time": round(time.time(), 3)})
            + "\n"
        )


def main() -> None:
    """Parse the mode and run it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    satellite = modes.add_parser("run", help="run the satellite")
    satellite.add_argument("--host", default="127.0.0.1", help="address to serve on")
    satellite.add_argument("--port", type=int, default=10700, help="port to serve on")
    satellite.add_argument("--name", default="Test satellite", help="its name")
    satellite.add_argument("--mic", type=Path, required=True, help="mic folder")
    satellite.add_argument("--snd", type=Path, required=True, help="snd folder")
    satellite.add_argument("--events", type=Path, help="file to log events to")
    satellite.add_argument(
        "extra", nargs=argparse.REMAINDER, help="more wyoming-satellite options"
    )
    modes.add_parser("mic", help="the microphone program").add_argument(
        "folder", type=Path
    )
    modes.add_parser("snd", help="the speaker program").add_argument(
        "folder", type=Path
    )
    logger = modes.add_parser("event", help="an event command")
    logger.add_argument("file", type=Path)
    logger.add_argument("kind", choices=EVENTS)
    args = parser.parse_args()
    if args.mode == "run":
        run(args)
    elif args.mode == "mic":
        microphone(args.folder)
    elif args.mode == "snd":
        speaker(args.folder)
    else:
        event(args.file, args.kind)


if __name__ == "__main__":
    main()
