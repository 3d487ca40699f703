"""`jobqueue api`: serve the app with uvicorn, which drains requests on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import math

import uvicorn
from fastapi import FastAPI

from worker.api.app import CONNECT_TIMEOUT_SECONDS, create_app
from worker.db.connection import DatabaseRefused, DatabaseUnavailable, connect
from worker.settings import ApiSettings, get_settings

# A batch of a thousand jobs holds some ten thousand new objects at once (parsed JSON, models,
# rows); collecting the young generation every 700 of them, Python's default, walked the same
# live objects many times over per batch.
YOUNG_GENERATION_THRESHOLD = 50_000


def settle_heap() -> None:
    """Tune the garbage collector for the API's work, once the app is built.

    What start-up made (modules, the app, its schemas) is exempted: each full collection
    walks every tracked object, and with tens of thousands of start-up objects to walk, full
    collections were a quarter of a large batch's CPU. Young objects are collected less
    often. Objects made later are collected as before."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_GENERATION_THRESHOLD), middle, old)


def app_from_environment() -> FastAPI:
    """The factory each uvicorn worker process calls when JOBQUEUE_API_WORKERS > 1."""
    settings = get_settings()
    app = create_app(settings.api, settings.dsn)
    settle_heap()
    return app


async def _check_login(dsn: str) -> None:
    """Fail fast on a login PostgreSQL refuses; an unreachable server is only a warning
    (the API starts, and /readyz says why it is not ready)."""
    try:
        conn = await connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    except DatabaseRefused:
        raise
    except DatabaseUnavailable:
        return
    await conn.close()


def serve(settings: ApiSettings, dsn: str) -> None:
    """The process's logging is set up by its caller, which holds the shared settings."""
    # Raises DatabaseRefused, which the CLI prints as one line before exiting with 1.
    asyncio.run(_check_login(dsn))
    several = settings.api_workers > 1
    app = None if several else create_app(settings, dsn)
    if app is not None:
        settle_heap()
    uvicorn.run(
        # worker processes build their own app, and pool, from the environment
        "worker.api.server:app_from_environment" if app is None else app,
        factory=several,
        workers=settings.api_workers,
        host=settings.api_host,
        port=settings.api_port,
        log_level="debug" if settings.debug else "info",
        access_log=settings.debug,
        # in-flight requests get this long after SIGTERM, inside the pod's grace period
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout),
        lifespan="on",
    )
