"""What every request handler shares: the settings, the pool and the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request

from worker.api.enqueue import EnqueueService, pooled
from worker.api.metrics import ApiMetrics
from worker.db.waits import JobWaiters
from worker.settings import ApiSettings


@dataclass
class ApiState:
    settings: ApiSettings
    metrics: ApiMetrics
    enqueue: EnqueueService
    # GET /jobs/{id}?wait_seconds=N: one LISTEN connection for every waiting request
    waiters: JobWaiters
    pool: asyncpg.Pool | None = None
    # lists, stats and the console: a pool of their own (JOBQUEUE_READ_DB_URL's replica, or
    # the primary), so that slow reads cannot take the connections enqueue needs
    read_pool: asyncpg.Pool | None = None

    def open(self, pool: asyncpg.Pool, read_pool: asyncpg.Pool | None = None) -> None:
        self.pool = pool
        self.read_pool = read_pool
        self.enqueue.open(pool)

    def close(self) -> None:
        self.pool = self.read_pool = None
        self.enqueue.close()

    def require_pool(self) -> asyncpg.Pool:
        if self.pool is None:  # only outside the lifespan, e.g. a test that skipped it
            raise HTTPException(status_code=503, detail="the database pool is not open")
        return self.pool

    def require_read_pool(self) -> asyncpg.Pool:
        """The readers' pool, for what may be a little behind the primary (lists, stats,
        the console); single jobs are read from the primary, which just wrote them."""
        return self.read_pool or self.require_pool()

    @asynccontextmanager
    async def connection(
        self, acquire_timeout: float | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """One pooled connection, for work that needs a transaction or a single snapshot."""
        async with pooled(self.require_pool(), acquire_timeout) as conn:
            yield conn

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection of the readers' pool, for one snapshot of several reads."""
        async with pooled(self.require_read_pool()) as conn:
            yield conn


async def api_state(request: Request) -> ApiState:
    # async: FastAPI would run a plain function in a worker thread, on every request
    state: ApiState = request.app.state.api
    return state


# The dependency every route declares to reach the per-process state.
State = Annotated[ApiState, Depends(api_state)]
