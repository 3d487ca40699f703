"""The FastAPI app: `create_app(settings, dsn)` builds it; its lifespan owns the one pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from worker import tracing
from worker.api.docs import install_docs
from worker.api.enqueue import EnqueueService
from worker.api.errors import install_error_handlers
from worker.api.gate import Gate, GatePolicy
from worker.api.json_errors import JsonErrorsMiddleware
from worker.api.metrics import ApiMetrics, MetricsMiddleware
from worker.api.routes_batches import batches_router
from worker.api.routes_bulk import bulk_router
from worker.api.routes_inspect import inspect_router
from worker.api.routes_jobs import jobs_router
from worker.api.routes_probes import probes_router
from worker.api.routes_queues import queues_router
from worker.api.routes_schedules import schedules_router
from worker.api.state import ApiState
from worker.console.routes import install_console
from worker.db.connection import DatabaseRefused, DatabaseUnavailable, create_pool
from worker.db.waits import JobWaiters
from worker.handlers import known_job_types
from worker.settings import ApiSettings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
POOL_CLOSE_TIMEOUT_SECONDS = 10.0

DESCRIPTION = """\
Feed and inspect the job queue. The seed's examples keep working:

    curl -X POST http://localhost:8001/api/v1/queue/jobs -H 'Content-Type: application/json' \\
      -d '{"job_type": "emails",
           "payload": {"to": "user@example.com", "subject": "Welcome"},
           "queue_name": "default", "max_tries": 3}'
    curl http://localhost:8001/api/v1/queue/jobs/1
    curl http://localhost:8001/api/v1/queue/jobs/stats/overview

With a token set, `/api` routes need `Authorization: Bearer <token>`: `JOBQUEUE_API_TOKEN`
(admin), `JOBQUEUE_API_READ_TOKEN` (every GET) or `JOBQUEUE_API_ENQUEUE_TOKEN` (POST /jobs and
/jobs/batch, GET of one job or batch). See docs/security.md.
"""


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release. The API never changes session state (no SET, LISTEN,
    advisory locks or cursors), so asyncpg's default reset query would only cost a round
    trip per request; an open transaction is still rolled back by asyncpg itself."""


async def open_pool(
    settings: ApiSettings, dsn: str, *, size: tuple[int, int] | None = None, role: str = ""
) -> asyncpg.Pool:
    """One of the process's pools (the primary's, by default). When PostgreSQL is down at
    start, the API still comes up (readyz says why it is not ready) and connects once the
    database is back. Each acquire, statement and reply has its deadline (DatabaseTimeouts)."""
    low, high = size or (settings.api_pool_min, max(settings.api_pool_max, settings.api_pool_min))
    timeouts = settings.timeouts
    name = {"application_name": f"jobqueue-api{role}"}

    def pool(min_size: int) -> Awaitable[asyncpg.Pool]:
        return create_pool(
            dsn,
            min_size=min_size,
            max_size=high,
            timeout=CONNECT_TIMEOUT_SECONDS,
            reset=keep_session,
            acquire_timeout=timeouts.db_acquire_timeout,
            **timeouts.connect_kwargs(name),
        )

    try:
        return await pool(low)
    except DatabaseRefused:
        raise  # a wrong password or database: no retry fixes it
    except DatabaseUnavailable as exc:
        log.warning("%s; starting anyway, /readyz reports 503 until it is reachable", exc)
        return await pool(0)  # connects on first use


async def close_pool(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT_SECONDS)
    except TimeoutError:
        pool.terminate()


def create_app(settings: ApiSettings, dsn: str) -> FastAPI:
    tracing.setup(settings.tracing, "jobqueue-api")
    state = ApiState(
        settings=settings,
        metrics=ApiMetrics(settings.metrics_max_queues),
        enqueue=EnqueueService(
            settings,
            known_job_types(settings.handler_modules, settings.handler_limits.disabled_handlers),
        ),
        waiters=JobWaiters(
            dsn, settings.timeouts.connect_kwargs({"application_name": "jobqueue-api waits"})
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings, dsn)
        try:
            readers = await open_pool(
                settings,
                settings.read_db_url or dsn,
                size=(1, settings.api_read_pool_max),
                role=" reads",
            )
        except BaseException:
            await close_pool(pool)
            raise
        state.open(pool, readers)
        try:
            yield
        finally:
            await state.waiters.close()
            state.close()
            await close_pool(readers)
            await close_pool(pool)

    app = FastAPI(
        title="Job-Queue API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from local assets
        redoc_url=None,
        telemetry=tracing.app_telemetry(),
    )
    app.state.api = state
    install_error_handlers(app)
    install_docs(app)
    # stats/overview is registered before /jobs/{job_id}, which would otherwise match it
    app.include_router(inspect_router(settings))
    app.include_router(bulk_router(settings))  # before /jobs/{job_id}/..., which are POSTs too
    app.include_router(jobs_router(settings))
    app.include_router(queues_router(settings))
    app.include_router(schedules_router(settings))
    app.include_router(probes_router(settings))
    app.include_router(batches_router(settings))
    install_console(app, settings)
    # innermost first: a body must be JSON (415) once the gate has let the request in
    app.add_middleware(JsonErrorsMiddleware)
    # the gate (Host, Origin, token, body size) before anything looks at the request
    app.add_middleware(Gate, policy=GatePolicy.from_settings(settings))
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # outermost: counts all
    return app
