"""A speech server ends with the process that started it, also when that is killed.

A small Python process starts the real wake word server through
scripts.servers.launch, as the tests and scripts do, and is then killed with
SIGKILL or SIGTERM (neither lets it stop the server itself). The server must
be gone, and its port closed, within seconds instead of living on under PID 1.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time

import pytest

from scripts.servers.launch import HOST, PROJECT, free_port

# Starts the wake word server, says its pid, then waits to be killed.
PARENT = """
import sys, time
from pathlib import Path
from scripts.servers import launch

server = launch.start_ready("wakeword", "wakeword", int(sys.argv[1]), Path(sys.argv[2]))
print(server.process.pid, flush=True)
time.sleep(600)
"""
# Starts a child from a fork of the process that made its preexec_fn, as if
# that process had died before the child asked for the signal: the child must
# not run.
RACE = """
import os, signal, subprocess, sys
from scripts.children import end_with_parent

preexec = end_with_parent(signal.SIGKILL)
if os.fork() == 0:
    child = subprocess.Popen(["sleep", "5"], preexec_fn=preexec)
    os._exit(-child.wait())
_, status = os.waitpid(-1, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
GONE_WITHIN = 5.0


def alive(pid: int) -> bool:
    """Return True while `pid` runs (a zombie nobody reaps has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def listening(port: int) -> bool:
    """Return True if something accepts connections on the port."""
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


@pytest.fixture
def parent(
    tmp_path: Path, socket_enabled: None
) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """Run PARENT until its server is ready; yield it, the server's pid and port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(port), str(tmp_path)],
        cwd=PROJECT,
        env=dict(os.environ, PYTHONPATH=str(PROJECT)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    server: int | None = None
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip().isdigit(), f"no server started: {line!r}"
        server = int(line)
        assert alive(server)
        assert listening(port)
        yield process, server, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        # Without the fix the server lives on: end it here, not under PID 1.
        if server is not None and alive(server):
            os.kill(server, signal.SIGKILL)


@pytest.mark.servers
@pytest.mark.parametrize(
    "signum", [signal.SIGKILL, signal.SIGTERM], ids=lambda signum: signum.name
)
def test_server_ends_with_its_killed_parent(
    parent: tuple[subprocess.Popen[str], int, int], signum: signal.Signals
) -> None:
    """Killing the process that started a server ends the server and frees its port."""
    process, server, port = parent
    process.send_signal(signum)
    assert process.wait(10) == -signum
    deadline = time.monotonic() + GONE_WITHIN
    while (alive(server) or listening(port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(server), f"the server outlived its parent ({signum.name})"
    assert not listening(port), f"port {port} still open after {signum.name}"


def test_child_of_a_parent_already_gone_ends_at_once() -> None:
    """The child signals itself when its parent died before it asked (fork race)."""
    result = subprocess.run(
        [sys.executable, "-c", RACE],
        cwd=PROJECT,
        env=dict(os.environ, PYTHONPATH=str(PROJECT)),
        timeout=20,
        check=False,
    )
    assert result.returncode == signal.SIGKILL
