"""Queue depth and worker in-flight counts, read over ONE database connection.

The connection is opened lazily and reopened after any failure; a failure surfaces as
DepthUnavailable so the caller can hold replicas. The same connection LISTENs for new jobs,
so the control loop can react between polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from worker.db import NEW_JOB_CHANNEL, schedule_demand
from worker.db import depth as depth_sql
from worker.db import queues as queues_sql
from worker.db.connection import DatabaseUnavailable, connect
from worker.db.errors import is_transient
from worker.db.startups import WORKER_STARTED_CHANNEL

log = logging.getLogger(__name__)
T = TypeVar("T")

_FAILURES = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class DepthUnavailable(RuntimeError):
    """The depth could not be read; replicas must be held."""


@dataclass(frozen=True)
class Depth:
    ready: int  # pending with run_at <= now, capped; none of a paused queue's
    running: int  # capped; a paused queue's count, as they still finish
    oldest_ready_seconds: float | None  # None when nothing is ready
    paused: tuple[str, ...] = ()  # which of the probed queues are paused
    due_schedules: int = 0  # unpaused schedules of unpaused queues whose tick has come, capped


class DepthSource:
    def __init__(
        self,
        dsn: str,
        *,
        timeout: float = 5.0,
        on_new_job: Callable[[str], None] | None = None,
        on_worker_started: Callable[[str], None] | None = None,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._connect_kwargs = connect_kwargs or {}
        self._on_new_job = on_new_job
        self._on_worker_started = on_worker_started  # a worker's first claim (its pod name)
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one connection runs one statement at a time

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await connect(self._dsn, timeout=self._timeout, **self._connect_kwargs)
        if self._on_new_job is not None:
            await conn.add_listener(NEW_JOB_CHANNEL, self._notified)
        if self._on_worker_started is not None:
            await conn.add_listener(WORKER_STARTED_CHANNEL, self._worker_started)
        self._conn = conn
        log.info("depth source connected")
        return conn

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if self._on_new_job is not None:
            self._on_new_job(str(payload))

    def _worker_started(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if self._on_worker_started is not None:
            self._on_worker_started(str(payload))

    async def _read(self, read: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self._lock:
            try:
                return await read(await self._connection())
            except (*_FAILURES, DatabaseUnavailable) as exc:
                await self._drop()
                # held replicas either way; a permanent cause needs a person, so say so
                hint = "" if is_transient(exc) else " (not transient: check DB_URL and the schema)"
                raise DepthUnavailable(f"cannot read queue depth: {exc}{hint}") from exc

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                async with asyncio.timeout(1.0):
                    await conn.close()
            except (*_FAILURES, RuntimeError):
                conn.terminate()

    async def read(self, read: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Another read over the same one connection (the capacity reads, the decisions
        record), failing as the depth does."""
        return await self._read(read)

    async def depth(self, queues: Sequence[str], cap: int) -> Depth:
        """Ready and running jobs over `queues`, each counted up to `cap`; a paused queue's
        ready jobs are no demand."""
        return await self._read(lambda c: self._count(c, queues, cap))

    async def _count(self, conn: asyncpg.Connection, queues: Sequence[str], cap: int) -> Depth:
        paused = await queues_sql.paused_queues(conn, queues, wait_seconds=self._timeout)
        row = await depth_sql.count_jobs_depth(conn, queues, cap, self._timeout)
        active = [q for q in queues if q not in paused]
        due = 0
        if active and not row["running"]:  # a running job means a worker, and its scheduler
            due = await schedule_demand.count_due_schedules(conn, active, cap, self._timeout)
        if not paused:
            return Depth(row["ready"], row["running"], row["oldest_ready_seconds"], (), due)
        ready, oldest = 0, None
        if active:
            unpaused = await depth_sql.count_jobs_depth(conn, active, cap, self._timeout)
            ready, oldest = unpaused["ready"], unpaused["oldest_ready_seconds"]
        return Depth(ready, row["running"], oldest, tuple(paused), due)

    async def in_flight(self, worker_names: Sequence[str]) -> dict[str, int]:
        """In-flight jobs per worker name (pod name), for workers whose lease is fresh."""
        if not worker_names:
            return {}
        return await self._read(
            lambda c: depth_sql.sum_workers_in_flight(c, worker_names, self._timeout)
        )

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
