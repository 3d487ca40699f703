"""The Python client: enqueue from your own transaction, and wait for results.

    from worker.client import enqueue, Client

    job_id = await enqueue(session, "emails", {"to": "a@example.com"})   # in your transaction
    async with Client(dsn) as client:
        job = await client.wait(job_id, timeout=30)

`enqueue` takes an asyncpg connection or pool, a psycopg 3 AsyncConnection, or an SQLAlchemy
AsyncSession or AsyncConnection, and runs jobqueue_enqueue() on it: the job exists once the
caller commits, and not at all if it rolls back; the commit wakes a worker through NOTIFY.
Refused fields raise the driver's own error, whose message names the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import asyncpg

from worker.db import clients
from worker.db.connection import create_pool
from worker.db.errors import JobNotFound
from worker.db.jobs import Job, get_job
from worker.db.waits import JobWaiters

__all__ = ["Client", "Job", "enqueue"]


async def enqueue(
    conn: Any,
    job_type: str,
    payload: dict[str, Any] | None = None,
    *,
    queue_name: str = "default",
    priority: int = 0,
    run_at: datetime | None = None,
    delay_seconds: float | None = None,
    max_tries: int = 3,
    idempotency_key: str | None = None,
    timeout_seconds: float | None = None,
    depends_on: Sequence[int] | None = None,
    run_on_failure: bool = False,
    concurrency_key: str | None = None,
) -> int:
    """Enqueue one job on the caller's connection; returns its id (the existing job's id for a
    repeated idempotency_key). With depends_on, it waits blocked until those jobs complete."""
    # the parameters are jobqueue_enqueue()'s, by name
    fields = {name: value for name, value in locals().items() if name != "conn"}
    return await clients.enqueue(conn, fields)


class Client:
    """A small pool (two connections) and one LISTEN connection, however many waits run."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None
        settings = {"server_settings": {"application_name": "jobqueue-client"}}
        self._waiters = JobWaiters(dsn, settings)

    async def __aenter__(self) -> Client:
        self._pool = await create_pool(self._dsn, min_size=1, max_size=2)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._waiters.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("use the client as `async with Client(dsn) as client:`")
        return self._pool

    async def enqueue(
        self, job_type: str, payload: dict[str, Any] | None = None, **options: Any
    ) -> int:
        """As the module's enqueue(), in a transaction of its own."""
        return await enqueue(self._require_pool(), job_type, payload, **options)

    async def get(self, job_id: int) -> Job:
        job = await get_job(self._require_pool(), job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def wait(self, job_id: int, timeout: float) -> Job:  # noqa: ASYNC109 - the contract
        """The job as soon as it is completed, failed or cancelled, or as it is once `timeout`
        seconds have passed (check `job.status`)."""
        job = await self._waiters.wait(self._require_pool(), job_id, timeout)
        if job is None:
            raise JobNotFound(job_id)
        return job
