"""What every request handler shares: settings, the pool, metrics and the known job types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, cast

import asyncpg
from fastapi import Depends, HTTPException, Request

from worker.api.coalesce import EnqueueCoalescer
from worker.api.metrics import ApiMetrics
from worker.api.models import JobIn
from worker.api.validation import Loc, check_job_type, check_payload
from worker.db.errors import is_transient
from worker.db.jobs import Job, NewJob, enqueue_many
from worker.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    metrics: ApiMetrics
    known_job_types: list[str]
    pool: asyncpg.Pool | None = None
    coalescer: EnqueueCoalescer | None = None

    def open(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.coalescer = EnqueueCoalescer(
            lambda jobs: enqueue_many(pool, jobs),
            # leave connections for reads and batches
            flushers=max(1, self.settings.api_pool_max // 2),
            max_batch=self.settings.api_max_batch,
            is_outage=is_transient,
        )

    async def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        """One job, committed before this returns; grouped with concurrent ones."""
        if self.coalescer is None:
            raise HTTPException(status_code=503, detail="the database pool is not open")
        return await self.coalescer.enqueue(job)

    def require_pool(self) -> asyncpg.Pool:
        if self.pool is None:  # only outside the lifespan, e.g. a test that skipped it
            raise HTTPException(status_code=503, detail="the database pool is not open")
        return self.pool

    @asynccontextmanager
    async def connection(
        self, acquire_timeout: float | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """One pooled connection, for work that needs a transaction or a single snapshot."""
        async with self.require_pool().acquire(timeout=acquire_timeout) as proxy:
            # the pool's proxy forwards every Connection method
            yield cast(asyncpg.Connection, proxy)

    def new_job(self, job: JobIn, loc: Loc) -> NewJob:
        """Checks what the model's types cannot, then builds the data layer's input."""
        check_job_type(
            job.job_type,
            (*loc, "job_type"),
            self.known_job_types,
            self.settings.allow_unknown_job_types,
        )
        check_payload(job.payload, (*loc, "payload"), self.settings.api_max_payload_bytes)
        return NewJob(
            job_type=job.job_type,
            payload=job.payload,
            queue_name=job.queue_name,
            priority=job.priority,
            run_at=job.run_at,
            delay_seconds=job.delay_seconds,
            max_tries=job.max_tries,
            idempotency_key=job.idempotency_key,
            timeout_seconds=job.timeout_seconds,
        )


async def api_state(request: Request) -> ApiState:
    # async: FastAPI would run a plain function in a worker thread, on every request
    state: ApiState = request.app.state.api
    return state


# The dependency every route declares to reach the per-process state.
State = Annotated[ApiState, Depends(api_state)]
