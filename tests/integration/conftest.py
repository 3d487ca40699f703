"""Fixtures the integration tests share."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.fixtures.processes import log_tail, stop_process
from tests.integration.queue_support import start_worker_process
from worker.db.connection import create_pool

Popen = subprocess.Popen  # type: ignore[type-arg]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Any]:
    """Starts worker processes; ends those still running when the test ends."""
    started: list[tuple[Popen, Path]] = []

    def start(dsn: str, **env: str) -> Popen:
        log = tmp_path / f"worker-{len(started)}.log"
        proc = start_worker_process(dsn, log, **env)
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        stop_process(proc)
        print(f"--- {log.name} (exit {proc.returncode})\n{log_tail(log)}")


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool (two connections) on this test's own migrated database."""
    created = await create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        yield created
    finally:
        await created.close()
