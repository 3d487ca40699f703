"""Versioned SQL migrations under an advisory lock, so concurrent pods are safe."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import asyncpg

from worker.db import sql_files
from worker.db.connection import connect
from worker.db.migrate_steps import LockPolicy, apply

# An arbitrary constant shared by every migrating process.
MIGRATION_LOCK_KEY = 0x6A6F6271  # "jobq"
LOCK_POLL_SECONDS = 0.2

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_sql = sql_files.statements("migrate")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache  # package data: read once, not on every readiness probe
def available_migrations() -> tuple[Migration, ...]:
    folder = resources.files("worker.db").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return tuple(sorted(found, key=lambda m: m.version))


def expected_version() -> int:
    migrations = available_migrations()
    return migrations[-1].version if migrations else 0


async def current_version(conn: asyncpg.Connection) -> int:
    if not await conn.fetchval(_sql("version_table_exists")):
        return 0
    return int(await conn.fetchval(_sql("current_version")))


async def _take_lock(conn: asyncpg.Connection) -> None:
    """The migration lock, polled (the other holder may be building an index CONCURRENTLY,
    which would wait for a session blocked in pg_advisory_lock)."""
    while True:  # until taken: the other holder ends, or its connection does
        if await conn.fetchval(_sql("try_lock"), MIGRATION_LOCK_KEY):
            return
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def migrate_connection(
    conn: asyncpg.Connection, policy: LockPolicy | None = None
) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call. Each runs under
    `policy`'s lock timeout, its large indexes built CONCURRENTLY (worker.db.migrate_steps)."""
    applied: list[int] = []
    await _take_lock(conn)
    try:
        await conn.execute(_sql("create_version_table"))
        done = await current_version(conn)
        for migration in available_migrations():
            if migration.version <= done:
                continue
            await apply(
                conn,
                migration.sql,
                _sql("record_version"),
                migration.version,
                migration.name,
                policy or LockPolicy(),
            )
            applied.append(migration.version)
    finally:
        await conn.execute(_sql("unlock"), MIGRATION_LOCK_KEY)
    return applied


async def migrate(dsn: str, policy: LockPolicy | None = None) -> list[int]:
    conn = await connect(dsn)
    try:
        return await migrate_connection(conn, policy)
    finally:
        await conn.close()
