"""The enqueue service: one place that turns the API's JobIn into rows, for POST /jobs and
POST /jobs/batch alike.

It checks what the model's types cannot (known job type, what PostgreSQL will store, the size
cap, the job type's payload model: a typed task's own model, the very one its handler gets)
through worker.handlers.admission, which the CLI shares, serialising each payload once: the
JSON text that was measured is the text that is inserted. Each refusal is an InvalidJob, which
the app answers with 422 (413 for the size cap). Single jobs go through group commit
(coalesce.py); a batch is one statement in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import cast

import asyncpg

from worker import tracing
from worker.api.coalesce import EnqueueCoalescer
from worker.api.idempotency import check_reused_keys, conflict, differs
from worker.api.models import JobIn
from worker.api.validation import InputError, Loc
from worker.db.errors import DatabaseUnavailable, is_transient
from worker.db.idempotency import KeyHolder
from worker.db.jobs import Enqueued, Job, NewJob, enqueue_many, enqueue_many_brief
from worker.handlers.admission import JobAdmission
from worker.settings import ApiSettings


@asynccontextmanager
async def pooled(
    pool: asyncpg.Pool, acquire_timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection; one that an outage left unusable is dropped, as an outage."""
    async with pool.acquire(timeout=acquire_timeout) as proxy:
        try:
            # the pool's proxy forwards every Connection method
            yield cast(asyncpg.Connection, proxy)
        except asyncpg.InternalClientError as exc:
            # A server that went away mid-statement can leave asyncpg's protocol stuck in
            # "another operation is in progress": close that connection so that the pool
            # opens a fresh one, and answer as for any outage (503).
            proxy.terminate()
            raise DatabaseUnavailable(f"a database connection broke: {exc}") from exc


class EnqueueService:
    def __init__(
        self,
        settings: ApiSettings,
        known_job_types: Sequence[str],
    ) -> None:
        self.settings = settings
        self.admission = JobAdmission.of(settings, known_job_types)
        self._pool: asyncpg.Pool | None = None
        self._coalescer: EnqueueCoalescer | None = None

    def open(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._coalescer = EnqueueCoalescer(
            self._insert,
            # leave connections for reads and batches
            flushers=max(1, self.settings.api_pool_max // 2),
            max_batch=self.settings.api_max_batch,
            is_outage=is_transient,
        )

    def close(self) -> None:
        self._pool = self._coalescer = None

    def prepare(self, job: JobIn, loc: Loc, traceparent: str | None = None) -> NewJob:
        """The data layer's input, or an InvalidJob naming the field."""
        return self.admission.new_job(job.job_type, job.payload, job, loc, traceparent)

    async def one(self, job: JobIn) -> tuple[Job, bool]:
        """One job, committed before this returns; grouped with concurrent ones."""
        with tracing.enqueue_span(job.queue_name) as span:
            new_job = self.prepare(job, ("body",), span.traceparent)
            if self._coalescer is None:
                raise DatabaseUnavailable("the database pool is not open")
            enqueued = await self._coalescer.enqueue(new_job)
            found, created = enqueued
            key = new_job.idempotency_key
            if not created and key is not None and found.idempotency_key == key:
                holder = KeyHolder(found.id, found.job_type, found.queue_name, found.payload)
                if differs(holder, new_job):
                    raise conflict(key, holder, ("body",))
            span.enqueued(enqueued[0].id, enqueued[1])
            return enqueued

    def check_batch_size(self, jobs: Sequence[JobIn]) -> None:
        limit = self.settings.api_max_batch
        if len(jobs) > limit:
            raise InputError(
                422,
                ("body", "jobs"),
                f"at most {limit} jobs per batch (JOBQUEUE_API_MAX_BATCH), got {len(jobs)}",
                "too_long",
            )

    async def batch(self, jobs: Sequence[JobIn]) -> list[tuple[Enqueued, bool]]:
        """All jobs in one transaction, or none."""
        self.check_batch_size(jobs)
        with tracing.enqueue_batch_span(jobs) as span:
            parent = span.traceparent
            new_jobs = [self.prepare(j, ("body", "jobs", i), parent) for i, j in enumerate(jobs)]
            async with pooled(self._require_pool()) as conn, conn.transaction():
                pairs = await enqueue_many_brief(conn, new_jobs)
                located = [(("body", "jobs", i), job) for i, job in enumerate(new_jobs)]
                await check_reused_keys(conn, located, [made for _, made in pairs])
                return pairs

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DatabaseUnavailable("the database pool is not open")
        return self._pool

    async def _insert(self, jobs: Sequence[NewJob]) -> list[tuple[Job, bool]]:
        async with pooled(self._require_pool()) as conn:
            return await enqueue_many(conn, jobs)
