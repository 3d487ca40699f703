"""Handlers that `jobqueue worker` subprocesses load through JOBQUEUE_HANDLER_MODULES in the
queue tests. Each records its runs in the table `test_runs`, so tests can count them."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from worker.handlers.base import JobContext, PermanentError, registry
from worker.settings import get_settings

RUNS_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS test_runs (
    job_id    bigint NOT NULL,
    attempt   integer NOT NULL,
    worker_id text NOT NULL,
    phase     text NOT NULL,
    at        timestamptz NOT NULL DEFAULT clock_timestamp())
"""

_pools: dict[str, asyncpg.Pool] = {}


async def _record(ctx: JobContext, phase: str) -> None:
    dsn = get_settings().dsn  # the worker process's own DB_URL: handlers are not handed it
    pool = _pools.get(dsn)
    if pool is None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        _pools[dsn] = pool
    await pool.execute(
        "INSERT INTO test_runs (job_id, attempt, worker_id, phase) VALUES ($1, $2, $3, $4)",
        ctx.job_id,
        ctx.attempt,
        ctx.worker_id,
        phase,
    )


@registry.register("test_record")
async def record(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Records 'start', sleeps payload['seconds'], records 'end'."""
    await _record(ctx, "start")
    await asyncio.sleep(float(payload.get("seconds", 0)))
    await _record(ctx, "end")
    return {"job_id": ctx.job_id, "attempt": ctx.attempt}


@registry.register("test_sleep")
async def sleep(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await asyncio.sleep(float(payload.get("seconds", 0)))
    return {"slept": payload.get("seconds", 0)}


@registry.register("test_fail")
async def fail(payload: dict[str, Any], ctx: JobContext) -> None:
    """Fails for good at once: for tests of what follows a failure."""
    raise PermanentError(str(payload.get("message", "failed on purpose")))
