"""Several `jobqueue worker` processes on one host with default settings: the busy default
health port falls back to a free one with one log line; a busy port that was asked for exits
with one line naming JOBQUEUE_WORKER_PORT, never a traceback. Real processes, real sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.fixtures.processes import start_logged, stop_process
from tests.integration.queue_support import REPO

DEFAULT_PORT = 9100


@contextlib.contextmanager
def _busy(port: int) -> Iterator[None]:
    """Hold `port` on all interfaces, unless something else already does (it is busy then)."""
    sock = socket.socket()
    try:
        sock.bind(("0.0.0.0", port))
        sock.listen()
    except OSError:
        pass
    try:
        yield
    finally:
        sock.close()


def _worker(dsn: str, log_path: Path, **env: str) -> object:
    values = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    values.update({"PYTHONPATH": str(REPO), "DB_URL": dsn, "POLL_INTERVAL": "0.2", **env})
    script = Path(sys.executable).with_name("jobqueue")
    args = (
        [str(script), "worker"] if script.exists() else [sys.executable, "-m", "worker", "worker"]
    )
    return start_logged(args, log_path, env=values, cwd=str(REPO))


def _wait_for(log_path: Path, text: str, within: float = 60) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        content = log_path.read_text()
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {log_path}:\n{log_path.read_text()}")


def test_a_busy_default_port_falls_back_with_one_line(pg_dsn: str, tmp_path: Path) -> None:
    with _busy(DEFAULT_PORT):
        procs = []
        try:
            for n in range(2):
                procs.append(_worker(pg_dsn, tmp_path / f"w{n}.log"))
            for n in range(2):
                content = _wait_for(tmp_path / f"w{n}.log", "slots; health on port")
                assert content.count(f"health port {DEFAULT_PORT} is in use") == 1
                assert "Traceback" not in content
            assert all(p.poll() is None for p in procs)  # type: ignore[attr-defined]
        finally:
            for proc in procs:
                stop_process(proc)  # type: ignore[arg-type]


def test_a_busy_port_that_was_set_exits_with_one_line(pg_dsn: str, tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        proc = _worker(pg_dsn, tmp_path / "w.log", JOBQUEUE_WORKER_PORT=str(port))
        code = proc.wait(timeout=60)  # type: ignore[attr-defined]
    finally:
        holder.close()
    content = (tmp_path / "w.log").read_text()
    assert code != 0
    assert "Traceback" not in content
    lines = [line for line in content.splitlines() if "JOBQUEUE_WORKER_PORT" in line]
    assert lines == [
        f"jobqueue worker: JOBQUEUE_WORKER_PORT={port}: the port is already in use; "
        "choose another, or leave it unset to take a free one"
    ]
