"""docs/python.md's examples, run as a user runs them: the shortest program as a script, the
pytest example under pytest, and the FastAPI app with an embedded worker under uvicorn, which
drains a running job on SIGTERM before it exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.doc_examples import example
from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process, wait_until
from tests.integration.queue_support import REPO, fetch, fetchval

DOC = "docs/python.md"


def _write(tmp_path: Path, name: str, example_name: str) -> Path:
    path = tmp_path / name
    path.write_text(example(DOC, example_name).code)
    return path


def _env(dsn: str) -> dict[str, str]:
    return {**os.environ, "DB_URL": dsn, "PYTHONPATH": str(REPO), "JOBQUEUE_WORKER_PORT": "0"}


def test_the_shortest_program_declares_enqueues_and_runs_a_typed_task(
    pg_dsn: str, tmp_path: Path
) -> None:
    script = _write(tmp_path, "greet.py", "quickstart")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(pg_dsn),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "completed Hello, Ada!"


def test_the_pytest_example_passes(tmp_path: Path) -> None:
    tests = _write(tmp_path, "test_charge.py", "pytest-example")
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*pytest, "-o", "asyncio_mode=auto", str(tests)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_an_embedded_worker_runs_jobs_and_drains_on_sigterm(pg_dsn: str, tmp_path: Path) -> None:
    _write(tmp_path, "app.py", "lifespan-app")
    port = free_port()
    log = tmp_path / "uvicorn.log"
    server = start_logged(
        [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)],
        log,
        env={**_env(pg_dsn), "JOBQUEUE_DRAIN_TIMEOUT": "30"},
        cwd=str(tmp_path),
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/docs", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=60, what="the app")
        quick = httpx.post(f"{base}/reports", json={"seconds": 0}, timeout=10).json()["job_id"]
        slow = httpx.post(f"{base}/reports", json={"seconds": 3}, timeout=10).json()["job_id"]

        def status(job_id: int) -> str:
            query = "SELECT status::text FROM jobs WHERE id = $1"
            return str(asyncio.run(fetchval(pg_dsn, query, job_id)))

        wait_until(lambda: status(quick) == "completed", timeout=30, what="the quick job")
        wait_until(lambda: status(slow) == "running", timeout=30, what="the slow job to start")
        server.send_signal(signal.SIGTERM)
        started = time.monotonic()
        # uvicorn re-raises the signal once its shutdown is complete
        assert server.wait(timeout=60) in (0, -signal.SIGTERM), log_tail(log)
        assert "Application shutdown complete" in log.read_text()
        # the app stayed up until the running job was done, then stopped
        [row] = asyncio.run(
            fetch(pg_dsn, "SELECT status::text AS s, result FROM jobs WHERE id = $1", slow)
        )
        assert (row["s"], row["result"]) == ("completed", '"built"'), log_tail(log)
        assert time.monotonic() - started < 30
        assert asyncio.run(fetchval(pg_dsn, "SELECT count(*) FROM workers")) == 0
    finally:
        stop_process(server)
        print(f"--- uvicorn.log\n{log_tail(log)}")
