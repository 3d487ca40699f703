"""The local stack's child processes: each in a session of its own (a Ctrl-C reaches only
`jobqueue dev`, which then stops them in order), told to exit if `jobqueue dev` dies, and
signalled by process group so that nothing they started outlives them."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal a process started with start_new_session, and all it started; one that is
    already gone is no error."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _exit_with_parent(parent_pid: int) -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux), so a killed
    `jobqueue dev` leaves no workers behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    stopping_since: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()

    def terminate(self) -> None:
        """Ask it to stop (workers drain on SIGTERM)."""
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        signal_group(self.proc, signal.SIGTERM)

    def kill(self) -> None:
        signal_group(self.proc, signal.SIGKILL)


def python_command(*args: str) -> list[str]:
    """`jobqueue ARGS` with this interpreter, independent of PATH."""
    return [sys.executable, "-m", "jobqueue", *args]


def spawn(name: str, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> Child:
    """Start a child with its output in `log_path`. Call from the main thread: the parent-death
    signal follows the thread that forked."""
    parent = os.getpid()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
            preexec_fn=lambda: _exit_with_parent(parent),
        )
    return Child(name, proc, log_path)


def stop_all(children: Sequence[Child], grace: float) -> None:
    """SIGTERM every child, wait up to `grace` seconds for all, then SIGKILL the rest."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.proc.wait(timeout=10)
