"""The statements `jobqueue dev` runs: its database's creation and its live view's throughput."""

from __future__ import annotations

import asyncpg

from worker.db import sql_files

_sql = sql_files.statements("dev")
DEV_DATABASE = "jobqueue"  # dev.sql's CREATE DATABASE names it too (no parameters there)


async def create_dev_database(conn: asyncpg.Connection) -> None:
    """Create the stack's database unless it exists (run on the server's `postgres` db)."""
    if not await conn.fetchval(_sql("database_exists"), DEV_DATABASE):
        await conn.execute(_sql("create_database"))


async def count_jobs_recently_finished(
    conn: asyncpg.Connection, window_seconds: float, bound: int
) -> dict[str, int]:
    """Jobs finished in the last `window_seconds`, per final status, counted up to `bound`."""
    rows = await conn.fetch(_sql("count_jobs_recently_finished"), window_seconds, bound)
    return {row["status"]: row["n"] for row in rows}
