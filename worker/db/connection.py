"""Opening asyncpg connections and pools with the project's codecs."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from worker.db.errors import REFUSED_LOGIN, DatabaseRefused, DatabaseUnavailable
from worker.db.pools import timed_pool
from worker.settings import describe_dsn

__all__ = ["DatabaseRefused", "DatabaseUnavailable", "connect", "create_pool"]


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool's reset for connections that run only this package's statements, which leave
    no session state behind: no LISTEN, no session-level lock, no SET outside a transaction
    (the liveness lock and LISTEN live on a connection of their own). asyncpg's default reset
    (RESET ALL, CLOSE ALL, UNLISTEN *, pg_advisory_unlock_all()) is a round trip on every
    release, which each claim and acknowledgement waited on. asyncpg still rolls back a
    transaction left open and drops listeners before it calls this."""


def _unavailable(dsn: str, exc: BaseException) -> DatabaseUnavailable:
    if isinstance(exc, REFUSED_LOGIN):
        return DatabaseRefused(
            f"PostgreSQL at {describe_dsn(dsn)} refused the login: {exc}. "
            "Check the user, password and database name in DB_URL; retrying cannot help."
        )
    return DatabaseUnavailable(
        f"cannot reach PostgreSQL at {describe_dsn(dsn)}: {exc}. "
        "Check that the server is running, and that DB_URL has the right host, port, "
        "user, password and database."
    )


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    try:
        conn = await asyncpg.connect(dsn, **kwargs)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _unavailable(dsn, exc) from exc
    await _init_connection(conn)
    return conn


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float | None = None,
    **kwargs: Any,
) -> asyncpg.Pool:
    """A pool; with `acquire_timeout`, every acquire from it waits at most that long."""
    try:
        if acquire_timeout is None:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs
            )
        else:
            pool = await timed_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                acquire_timeout=acquire_timeout,
                **kwargs,
            )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _unavailable(dsn, exc) from exc
    assert pool is not None
    return pool
