"""`jobqueue api` as a process: uvicorn serves the app, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.integration.api_support import JOBS, SEED_JOB, api_process


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serves_and_stops_cleanly_on_sigterm(pg_dsn: str, tmp_path: Path, workers: str) -> None:
    with api_process(pg_dsn, tmp_path / "api.log", JOBQUEUE_API_WORKERS=workers) as api:
        with httpx.Client(base_url=api.url) as client:
            ids = {client.post(JOBS, json=SEED_JOB).json()["id"] for _ in range(10)}
            assert len(ids) == 10
            assert client.get("/readyz").status_code == 200
            # /metrics counts for the process that answers; with 2 workers, either of them
            assert "jobqueue_api_requests_total" in client.get("/metrics").text
        os.killpg(api.proc.pid, signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down, so the exit tells what ended it
        assert api.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log = api.log.read_text()
    # the lifespan ran to its end: the pool was closed in every process
    assert log.count("Application shutdown complete") == int(workers), log
