"""`jobqueue api`: serve the app with uvicorn, which drains requests on SIGTERM."""

from __future__ import annotations

import asyncio
import math

import uvicorn
from fastapi import FastAPI

from worker.api.app import CONNECT_TIMEOUT_SECONDS, create_app
from worker.db.connection import DatabaseRefused, DatabaseUnavailable, connect
from worker.settings import ApiSettings, get_settings


def app_from_environment() -> FastAPI:
    """The factory each uvicorn worker process calls when JOBQUEUE_API_WORKERS > 1."""
    settings = get_settings()
    return create_app(settings.api, settings.dsn)


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
    uvicorn.run(
        # worker processes build their own app, and pool, from the environment
        "worker.api.server:app_from_environment" if several else create_app(settings, dsn),
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
