"""`scripts/develop` as a running process, for the tests of the real clients.

The browser and the satellite meet Home Assistant the way a newcomer's would:
`python -m scripts.develop` sets up a fresh `hass` with Local Voice added with
its defaults, the speech servers on their usual ports and the demo home, and
keeps it running. `running_develop` starts it, waits until it says it runs,
and stops it (SIGTERM, as Ctrl-C would) when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading

from scripts.children import end_with_parent
from scripts.home_assistant import USER
from scripts.servers.launch import PROJECT, free_port

READY = "Home Assistant with Local Voice is running"
START_LIMIT = 600.0
STOP_LIMIT = 180.0


@dataclass
class Develop:
    """A running `scripts/develop`: where it listens and how to log in."""

    port: int
    folder: Path
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Return Home Assistant's address."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_dir(self) -> Path:
        """Return Home Assistant's configuration folder."""
        return self.folder / "config"

    @property
    def log(self) -> Path:
        """Return Home Assistant's log file."""
        return self.folder / "home-assistant.log"

    @property
    def username(self) -> str:
        """Return the demo user's name."""
        return USER["username"]

    @property
    def password(self) -> str:
        """Return the demo user's password."""
        return USER["password"]

    def tail(self, chars: int = 6000) -> str:
        """Return the end of develop's output and of Home Assistant's log."""
        log = self.log.read_text()[-chars:] if self.log.exists() else "(none)"
        return f"{''.join(self.output)[-chars:]}\n--- home-assistant.log ---\n{log}"


@contextlib.contextmanager
def running_develop(folder: Path, port: int | None = None) -> Iterator[Develop]:
    """Run `scripts/develop` in `folder` (on `port`, else a free one) until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    develop = Develop(port=port or free_port(), folder=folder)
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.develop", "--port", str(develop.port)],
        cwd=PROJECT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "LOCAL_VOICE_DEVELOP_DIR": str(folder),
        },
        start_new_session=True,
        # SIGTERM, as below, if the tests end without stopping it (killed).
        preexec_fn=end_with_parent(signal.SIGTERM),  # noqa: PLW1509
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    came_up = False

    def read() -> None:
        nonlocal came_up
        assert process.stdout is not None
        for line in process.stdout:
            develop.output.append(line)
            if READY in line:
                came_up = True
                ready.set()
        ready.set()  # the process ended: stop waiting

    reader = threading.Thread(target=read, name="develop-output", daemon=True)
    reader.start()
    try:
        if not ready.wait(START_LIMIT) or not came_up or process.poll() is not None:
            raise RuntimeError(f"scripts/develop did not come up:\n{develop.tail()}")
        yield develop
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_LIMIT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(10)
