"""What the queue tests share: an in-process worker, `jobqueue worker` subprocesses, waiting."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from tests.fixtures.processes import start_logged
from worker.db import claims
from worker.handlers.base import HandlerRegistry
from worker.runtime.main import WorkerProcess
from worker.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def worker_settings(dsn: str, **overrides: Any) -> Settings:
    """Explicit values for what the worker reads, fast enough for tests."""
    values: dict[str, Any] = {
        "db_url": dsn,
        "max_concurrent_jobs": 4,
        "worker_queues": ["default"],
        "poll_interval": 0.2,
        "worker_name": "test-worker",
        "worker_port": 0,
        "lease_seconds": 30.0,
        "heartbeat_seconds": 1.0,
        "drain_timeout": 10.0,
        "rescue_interval": 0.5,
        "rescue_enabled": True,
        "retention_seconds": 0,
        "backoff_base": 0.05,
        "backoff_max": 0.2,
        "default_job_timeout": None,
        "handler_modules": [],
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_worker(
    dsn: str, registry: HandlerRegistry, **overrides: Any
) -> AsyncIterator[WorkerProcess]:
    process = WorkerProcess(worker_settings(dsn, **overrides).worker, registry, dsn=dsn)
    await process.start()
    try:
        yield process
    finally:
        if not process.draining:
            await process.shutdown()


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = 30.0, what: str
) -> Any:
    """Poll `check` until it returns something truthy; fail after `within` seconds (a guard, not a
    speed assertion)."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


async def complete_claimed(
    conn: Any, worker: Any, jobs: list[claims.ClaimedJob], result: str = "{}"
) -> int:
    """Completes claimed jobs as the worker that claimed them, each with the JSON `result`."""
    ids, attempts = [j.id for j in jobs], [j.attempts for j in jobs]
    return await claims.complete_jobs(conn, worker, ids, attempts, [result] * len(jobs))


async def fail_claimed(conn: Any, worker: Any, jobs: list[claims.ClaimedJob], error: str) -> int:
    """Fails claimed jobs for good (no retry) as the worker that claimed them."""
    ids, attempts = [j.id for j in jobs], [j.attempts for j in jobs]
    return await claims.fail_jobs(
        conn, worker, ids, attempts, [error] * len(jobs), [None] * len(jobs)
    )


async def all_finished(conn: Any, within: float = 120) -> None:
    """Wait until no job is pending or running."""

    async def done() -> bool:
        return not await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"
        )

    await eventually(done, within=within, what="every job to finish")


async def fetchval(dsn: str, sql: str, *args: Any) -> Any:
    """The first value of `sql`'s first row, on a connection of its own (jsonb as text)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """`sql`'s rows, on a connection of its own (jsonb as text)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def start_worker_process(
    dsn: str, log_path: Path, *, cwd: Path = REPO, **env: str
) -> Any:  # subprocess.Popen[bytes]
    """`jobqueue worker` as a subprocess in its own session, with the test handlers loaded.
    `cwd` other than the repository (with PYTHONPATH) runs another tree's code, e.g. an older
    release's: then `python -m worker`, since the console script is this tree's."""
    values = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DB_URL": dsn,
        "MAX_CONCURRENT_JOBS": "4",
        "WORKER_QUEUES": "default",
        "POLL_INTERVAL": "0.2",
        "JOBQUEUE_WORKER_PORT": "0",
        "JOBQUEUE_HANDLER_MODULES": "tests.integration.queue_handlers",
        "JOBQUEUE_HEARTBEAT_SECONDS": "0.5",
        "JOBQUEUE_RESCUE_INTERVAL": "0.5",
        "JOBQUEUE_BACKOFF_BASE": "0.05",
        "JOBQUEUE_BACKOFF_MAX": "0.2",
        "JOBQUEUE_RETENTION_SECONDS": "0",
    }
    values.update(env)
    script = Path(sys.executable).with_name("jobqueue")
    args = (
        [str(script), "worker"]
        if script.exists() and cwd == REPO
        else [sys.executable, "-m", "worker", "worker"]
    )
    return start_logged(args, log_path, env=values, cwd=str(cwd))
