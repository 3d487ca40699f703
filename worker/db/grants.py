"""Rights for the components' own database roles, granted by the schema's owner once it has
migrated: `runtime` (API and workers: data only) and `readonly` (the controller's depth
probe). See docs/security.md for the roles the chart makes."""

from __future__ import annotations

import asyncpg

from worker.db import sql_files
from worker.db.connection import connect

_sql = sql_files.statements("grants")


async def grant_roles(
    conn: asyncpg.Connection, runtime: str | None = None, readonly: str | None = None
) -> list[str]:
    """Grant each named role its rights; returns the roles granted to."""
    granted = []
    for role, statement in ((runtime, "grant_runtime"), (readonly, "grant_readonly")):
        if not role:
            continue
        await conn.execute(_sql("set_grant_role"), role)
        await conn.execute(_sql(statement))
        granted.append(role)
    return granted


async def grant(dsn: str, runtime: str | None, readonly: str | None) -> list[str]:
    """grant_roles over a connection of its own (the owner's: `jobqueue migrate`'s DB_URL)."""
    if not runtime and not readonly:
        return []
    conn = await connect(dsn)
    try:
        return await grant_roles(conn, runtime, readonly)
    finally:
        await conn.close()
