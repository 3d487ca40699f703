"""Versioned SQL migrations under an advisory lock, so concurrent pods are safe."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import asyncpg

from worker.db import sql_files
from worker.db.connection import connect

# An arbitrary constant shared by every migrating process.
MIGRATION_LOCK_KEY = 0x6A6F6271  # "jobq"

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


async def migrate_connection(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied: list[int] = []
    await conn.execute(_sql("lock"), MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_sql("create_version_table"))
        done = await current_version(conn)
        for migration in available_migrations():
            if migration.version <= done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(_sql("record_version"), migration.version, migration.name)
            applied.append(migration.version)
    finally:
        await conn.execute(_sql("unlock"), MIGRATION_LOCK_KEY)
    return applied


async def migrate(dsn: str) -> list[int]:
    conn = await connect(dsn)
    try:
        return await migrate_connection(conn)
    finally:
        await conn.close()
