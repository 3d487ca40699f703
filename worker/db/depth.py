"""The autoscaler's reads: capped queue depth and in-flight jobs per worker name. Both the
controller and `jobqueue dev`'s local autoscaler call these (through controller.depth)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from worker.db import sql_files

_sql = sql_files.statements("depth")


async def count_jobs_depth(
    conn: asyncpg.Connection, queues: Sequence[str], cap: int, wait_seconds: float
) -> asyncpg.Record:
    """One row: `ready`, `running` (each counted up to `cap`) and `oldest_ready_seconds`."""
    rows = await conn.fetch(_sql("count_jobs_depth"), list(queues), cap, timeout=wait_seconds)
    return rows[0]


async def sum_workers_in_flight(
    conn: asyncpg.Connection, worker_names: Sequence[str], wait_seconds: float
) -> dict[str, int]:
    rows = await conn.fetch(_sql("sum_workers_in_flight"), list(worker_names), timeout=wait_seconds)
    return {row["name"]: row["in_flight"] for row in rows}
