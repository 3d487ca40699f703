"""Handlers for the end-to-end tests, loaded by workers through JOBQUEUE_HANDLER_MODULES.

`e2e_sleep` takes about 50 ms and records every run in `e2e_runs`, so a test can tell
"ran once" from "completed once".
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from worker.handlers import JobContext, registry
from worker.settings import get_settings

_pool: asyncpg.Pool | None = None
_pool_lock = asyncio.Lock()

CREATE_RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS e2e_runs (
    job_id  bigint      NOT NULL,
    attempt integer     NOT NULL,
    worker  text        NOT NULL,
    ran_at  timestamptz NOT NULL DEFAULT clock_timestamp()
)"""


async def _runs_pool(ctx: JobContext) -> asyncpg.Pool:
    global _pool
    async with _pool_lock:
        if _pool is None:
            _pool = await asyncpg.create_pool(get_settings().dsn, min_size=1, max_size=1)
    return _pool


@registry.register("e2e_sleep")
async def e2e_sleep(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await asyncio.sleep(float(payload.get("seconds", 0.05)))
    pool = await _runs_pool(ctx)
    await pool.execute(
        "INSERT INTO e2e_runs (job_id, attempt, worker) VALUES ($1, $2, $3)",
        ctx.job_id,
        ctx.attempt,
        ctx.worker_name,
    )
    return {"job_id": ctx.job_id, "attempt": ctx.attempt, "worker": ctx.worker_name}
