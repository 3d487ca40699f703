"""The Python client: enqueue from your own transaction, and wait for results.

    from jobqueue import enqueue
    from worker.client import Client

    job_id = await enqueue(session, "emails", {"to": "a@example.com"})   # in your transaction
    async with Client(dsn) as client:
        job = await client.wait(job_id, timeout=30)

`enqueue` takes an asyncpg connection or pool, a psycopg 3 AsyncConnection, or an SQLAlchemy
AsyncSession or AsyncConnection, and runs jobqueue_enqueue() on it: the job exists once the
caller commits, and not at all if it rolls back; the commit wakes a worker through NOTIFY.
A refused field raises InvalidJob naming it, whatever the driver: the rules of
worker/job_checks.py run first, and the SQL function's own refusals are read back as the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Unpack, get_type_hints

import asyncpg

from worker.db import clients
from worker.db.connection import create_pool
from worker.db.errors import JobNotFound
from worker.db.jobs import Job, get_job
from worker.db.waits import JobWaiters
from worker.job_checks import EnqueueOptions, EnqueueOptionsDict, PreparedJob, prepare_job

__all__ = ["Client", "Job", "enqueue", "enqueue_many"]


async def enqueue(
    conn: Any,
    job_type: str,
    payload: dict[str, Any] | None = None,
    **options: Unpack[EnqueueOptionsDict],
) -> int:
    """Enqueue one job on the caller's connection; returns its id (the existing job's id for a
    repeated idempotency_key, or for a unique_key an active job holds). With depends_on, it
    waits blocked until those jobs complete. The options are worker.job_checks.EnqueueOptions;
    a bad one raises InvalidJob naming it, before anything is sent."""
    return await clients.enqueue(conn, prepare_job(job_type, payload, dict(options)))


async def enqueue_many(conn: Any, jobs: Sequence[PreparedJob]) -> list[int]:
    """Enqueue prepared jobs (worker.job_checks.prepare_job) in one statement, in order, on
    the caller's connection; returns their ids."""
    return await clients.enqueue_many(conn, jobs)


def with_option_parameters(function: Any) -> None:
    """Show every option in help() and inspect: the parameters come from EnqueueOptions."""
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    types = get_type_hints(EnqueueOptionsDict)
    options = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=types[name]
        )
        for name, field in EnqueueOptions.model_fields.items()
    ]
    function.__signature__ = signature.replace(parameters=[*kept, *options])


with_option_parameters(enqueue)


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

    @property
    def pool(self) -> asyncpg.Pool:
        """The client's pool: a task's `enqueue(client, ...)` runs on it."""
        return self._require_pool()

    async def enqueue(
        self,
        job_type: str,
        payload: dict[str, Any] | None = None,
        **options: Unpack[EnqueueOptionsDict],
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
