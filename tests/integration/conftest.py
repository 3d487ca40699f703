"""Fixtures the integration tests share."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.processes import log_tail, stop_process
from tests.integration.queue_support import start_worker_process
from worker.db.connection import create_pool

Popen = subprocess.Popen  # type: ignore[type-arg]


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Any]:
    """Starts worker processes; ends those still running when the test ends, without
    blocking the event loop (a fault proxy may run on it, and a worker drains through it)."""
    started: list[tuple[Popen, Path]] = []

    def start(dsn: str, **env: str) -> Popen:
        log = tmp_path / f"worker-{len(started)}.log"
        proc = start_worker_process(dsn, log, **env)
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        await asyncio.to_thread(stop_process, proc)
        print(f"--- {log.name} (exit {proc.returncode})\n{log_tail(log)}")


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool (two connections) on this test's own migrated database."""
    created = await create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def proxy(pg_dsn: str) -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of this test's database (tests/fixtures/faultproxy.py)."""
    url = urlsplit(pg_dsn)
    assert url.hostname is not None and url.port is not None
    fault_proxy = await FaultProxy(url.hostname, url.port, seed=1).start()
    try:
        yield fault_proxy
    finally:
        await fault_proxy.close()
