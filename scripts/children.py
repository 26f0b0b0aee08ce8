"""Child processes that end with the process that started them.

A speech server or a `hass` started by a test or a script must not outlive
it, also when it is killed with SIGKILL and no cleanup of its own runs. On
Linux the child asks the kernel for a signal when its parent dies
(prctl PR_SET_PDEATHSIG), between fork and exec:

    subprocess.Popen(command, preexec_fn=end_with_parent(signal.SIGKILL))
"""

from __future__ import annotations

from collections.abc import Callable
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with_parent(
    signum: signal.Signals = signal.SIGKILL,
) -> Callable[[], None] | None:
    """Return a preexec_fn that has the child sent `signum` when its parent dies.

    None where there is no such thing (not Linux). The kernel sends it when
    the *thread* that started the child ends, so start such children from a
    thread that lives as long as they should (the main thread, or one that
    stops them first). A parent that died before the child asked is no longer
    its parent by then: the child sends itself the signal at once.

    Safe in a process with threads, which Python's documentation warns of
    for preexec_fn in general: the child takes no lock, it only calls libc's
    prctl, looked up here before the fork, and two system calls
    (ruff's PLW1509 is silenced where it is used).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.restype = ctypes.c_int
    option, signal_number = ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signum)
    parent = os.getpid()

    def ask_for_signal() -> None:
        if prctl(option, signal_number) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return ask_for_signal
