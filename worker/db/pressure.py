"""The controller's database-pressure probe (through controller.pressure_guard): the oldest
transaction holding back the xmin horizon, and the connection headroom. A module of its own,
beside its SQL, so that it ports as the storage underneath changes: it reads no table."""

from __future__ import annotations

import asyncpg

from worker.db import sql_files

_sql = sql_files.statements("pressure")


async def select_database_pressure(conn: asyncpg.Connection, wait_seconds: float) -> asyncpg.Record:
    """One row: the oldest holder's `pid` (None for a prepared transaction), `application_name`
    (a prepared transaction's gid), `state` and `age_seconds`, all None when nothing holds the
    horizon; `max_connections`, `reserved_connections`, `client_connections` and `sees_all`."""
    rows = await conn.fetch(_sql("select_database_pressure"), timeout=wait_seconds)
    return rows[0]
