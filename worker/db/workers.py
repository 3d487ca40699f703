"""A worker's registration, heartbeat and deregistration, and the probe of an idle
connection: the `workers` table's side of the worker, apart from the claims' hot path."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker.db import sql_files

Conn = asyncpg.Connection | PoolConnectionProxy

_sql = sql_files.statements("workers")


async def register_worker(
    conn: Conn,
    worker_id: UUID,
    name: str,
    queues: Sequence[str],
    concurrency: int,
    in_flight: int,
    lease_seconds: float,
) -> None:
    """Register, or heartbeat: renews the worker's lease and reports its in-flight count."""
    await conn.execute(
        _sql("register_worker"),
        worker_id,
        name,
        list(queues),
        concurrency,
        in_flight,
        lease_seconds,
    )


async def deregister_worker(conn: Conn, worker_id: UUID) -> None:
    await conn.execute(_sql("deregister_worker"), worker_id)


async def probe(conn: Conn) -> None:
    await conn.fetchval(_sql("probe"))
