"""`jobqueue api`: serve the app with uvicorn, which drains requests on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import math

import uvicorn
from fastapi import FastAPI

from worker.api.app import CONNECT_TIMEOUT_SECONDS, create_app
from worker.api.auth import any_token
from worker.api.gate import is_loopback
from worker.db.connection import DatabaseRefused, DatabaseUnavailable, connect
from worker.handlers import known_job_types
from worker.scopes import ADMIN, ENQUEUE, READ, duplicate_tokens
from worker.settings import ApiSettings, get_settings

log = logging.getLogger(__name__)


class UnsafeApiSettings(RuntimeError):
    """The API would serve what the settings leave open; the message names the setting."""


def check_exposure(settings: ApiSettings) -> None:
    """Closed by default: no token on a non-loopback address is refused, unless
    JOBQUEUE_API_INSECURE=true says so, which is then logged at every start."""
    duplicate = duplicate_tokens(
        ((ADMIN, settings.api_token), (READ, settings.api_read_token),
         (ENQUEUE, settings.api_enqueue_token))
    )  # fmt: skip
    if duplicate:
        raise UnsafeApiSettings(duplicate)
    if any_token(settings):
        return
    host = settings.api_host
    if settings.access.api_insecure:
        log.warning(
            "JOBQUEUE_API_INSECURE=true: the API and console on %s are open to anyone who can "
            "reach them, with no token (set JOBQUEUE_API_TOKEN to close them)",
            host,
        )
        return
    if not is_loopback(host):
        raise UnsafeApiSettings(
            f"JOBQUEUE_API_TOKEN is not set and the API would listen on {host} "
            "(JOBQUEUE_API_HOST): set JOBQUEUE_API_TOKEN, or JOBQUEUE_API_HOST=127.0.0.1, or "
            "JOBQUEUE_API_INSECURE=true to serve it open"
        )


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
    """The process's logging is set up by its caller, which holds the shared settings.
    Raises UnsafeApiSettings before anything starts."""
    check_exposure(settings)
    # a wrong JOBQUEUE_DISABLED_HANDLERS stops the start, in one line (UnknownDisabledHandler)
    known_job_types(settings.handler_modules, settings.handler_limits.disabled_handlers)
    # Raises DatabaseRefused, which the CLI prints as one line before exiting with 1.
    asyncio.run(_check_login(dsn))
    if settings.read_db_url:
        asyncio.run(_check_login(settings.read_db_url))
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
        # X-Forwarded-For and -Proto are believed from these proxies only (uvicorn's default
        # without the setting: 127.0.0.1); the console's Secure cookies and login limit use them
        proxy_headers=True,
        forwarded_allow_ips=settings.access.api_forwarded_allow_ips,
    )
