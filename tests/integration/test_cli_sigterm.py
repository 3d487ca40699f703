"""The `jobqueue` command handles SIGTERM from its first moment: as a container's PID 1 it would
otherwise lose a SIGTERM that came while it was still importing (found on the real node: a
worker scaled down as it started ran on until the kubelet's SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.processes import free_port

JOBQUEUE = Path(sys.executable).with_name("jobqueue")
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & SIGTERM_BIT)
    return False


def test_sigterm_while_starting_ends_the_command_with_143() -> None:
    # nothing listens there: the worker would still be connecting when SIGTERM comes
    env = {**os.environ, "DB_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none"}
    proc = subprocess.Popen([str(JOBQUEUE), "worker"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not catches_sigterm(proc.pid):
            assert proc.poll() is None, f"exited {proc.returncode} before handling SIGTERM"
            assert time.monotonic() < deadline, "SIGTERM was never handled"
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # 143: the early handler (still importing); 0: the worker's own drain had taken over
    assert code in (143, 0), (
        f"exit {code} ({proc.stderr.read().decode()[-500:] if proc.stderr else ''})"
    )
