"""A worker's registration, heartbeat and deregistration, its liveness lock, and the probe of
an idle connection: the `workers` table's side of the worker, apart from the claims' hot
path."""

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
    lock_key: int | None = None,
) -> None:
    """Register, or heartbeat: renews the worker's lease and reports its in-flight count.
    `lock_key` names the liveness lock the worker holds (None: the lease rule alone)."""
    await conn.execute(
        _sql("register_worker"),
        worker_id,
        name,
        list(queues),
        concurrency,
        in_flight,
        lease_seconds,
        lock_key,
    )


async def next_lock_key(conn: Conn) -> int:
    """A liveness lock key that no live worker holds."""
    return int(await conn.fetchval(_sql("next_lock_key")))


async def hold_liveness(conn: asyncpg.Connection, lock_key: int) -> None:
    """Take the worker's liveness lock for the life of `conn`'s session. Never on a pooled
    connection, which other tasks share and the pool may close and replace."""
    await conn.execute(_sql("hold_liveness"), lock_key)


async def deregister_worker(conn: Conn, worker_id: UUID) -> None:
    await conn.execute(_sql("deregister_worker"), worker_id)


async def probe(conn: Conn) -> None:
    await conn.fetchval(_sql("probe"))
