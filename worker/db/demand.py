"""The per-queue demand (jobqueue_queue_demand, migration 0012), read for the API's /metrics."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker.db import sql_files

Conn = asyncpg.Connection | PoolConnectionProxy

_sql = sql_files.statements("demand")

DEMAND_CAP = 100_000  # per queue: counting on past it changes no scaler's answer


async def select_queue_demand(conn: Conn, wait_seconds: float) -> list[asyncpg.Record]:
    """One row per known queue: `queue_name`, `ready`, `running`, `paused`."""
    return list(await conn.fetch(_sql("select_queue_demand"), DEMAND_CAP, timeout=wait_seconds))
