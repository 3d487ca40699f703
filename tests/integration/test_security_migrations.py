"""Migrations on a live database (worker.db.migrate_steps), with `jobqueue migrate` as a
process: indexes on jobs are built CONCURRENTLY outside the migration's transaction, which
waits for locks no longer than JOBQUEUE_MIGRATION_LOCK_TIMEOUT and tries again, so writes go
on while an upgrade waits; a build held up by an old snapshot is retried and ends valid."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from worker.db.migrate import expected_version

REPO = Path(__file__).resolve().parents[2]


async def back_to(conn: asyncpg.Connection, version: int, indexes: list[str]) -> None:
    """The database as an older release left it: these indexes gone, later versions unrecorded."""
    for name in indexes:
        await conn.execute(f"DROP INDEX IF EXISTS {name}")
    await conn.execute("DELETE FROM jobqueue_schema_version WHERE version > $1", version)


async def start_migrate(dsn: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "migrate",
        env={**os.environ, "DB_URL": dsn, "JOBQUEUE_MIGRATION_LOCK_TIMEOUT": "0.5",
             "JOBQUEUE_MIGRATION_RETRIES": "200", **env},
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def first_wait(migrating: asyncio.subprocess.Process, what: str) -> str:
    """The migration's output up to its first lock wait on `what`: it is under way, and held."""
    seen = ""
    async with asyncio.timeout(120):
        while "waited past the lock timeout" not in seen or what not in seen:
            line = await migrating.stdout.readline()  # type: ignore[union-attr]
            assert line, f"the migration ended without waiting:\n{seen}"
            seen += line.decode()
    return seen


async def invalid_indexes(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid"
    )
    return [row["name"] for row in rows]


async def test_writes_go_on_while_an_upgrade_waits(pg_dsn: str, conn: asyncpg.Connection) -> None:
    await back_to(
        conn, 7, ["jobs_rare_status_idx", "jobs_unique_key_lookup_idx", "batches_completed_idx"]
    )
    await conn.execute(
        "INSERT INTO jobs (job_type, payload) SELECT 'noop', '{}' FROM generate_series(1, 2000)"
    )
    blocker = await asyncpg.connect(pg_dsn)
    blocking = blocker.transaction()
    await blocking.start()
    # 0008 replaces this function; another session's uncommitted replace holds its row
    await blocker.execute(
        "CREATE OR REPLACE FUNCTION jobs_status_queues(p_status job_status, p_max integer) "
        "RETURNS TABLE (queue_name text) LANGUAGE sql STABLE AS $$ SELECT NULL::text LIMIT 0 $$"
    )
    migrating = await start_migrate(pg_dsn)
    try:
        # the upgrade is under way, and waits on the blocker
        waited = await first_wait(migrating, "migration 0008_console_indexes")
        for _ in range(3):  # enqueue still works: nothing holds the jobs table meanwhile
            await asyncio.wait_for(
                conn.execute("INSERT INTO jobs (job_type, payload) VALUES ('noop', '{}')"), 5
            )
    finally:
        await blocking.rollback()
        await blocker.close()
    out, _ = await asyncio.wait_for(migrating.communicate(), 120)
    assert migrating.returncode == 0, waited + out.decode()
    assert await conn.fetchval("SELECT max(version) FROM jobqueue_schema_version") == (
        expected_version()
    )
    assert await invalid_indexes(conn) == []
    for name in ("jobs_rare_status_idx", "jobs_unique_key_lookup_idx", "batches_completed_idx"):
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name), name


async def test_a_build_held_up_by_an_old_snapshot_is_retried(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    await back_to(conn, 8, ["batches_completed_idx"])
    reader = await asyncpg.connect(pg_dsn)
    old = reader.transaction(isolation="repeatable_read")
    await old.start()
    await reader.fetchval("SELECT count(*) FROM jobs")  # a snapshot the build must outlive
    migrating = await start_migrate(pg_dsn)
    try:
        # the build waits for the old snapshot, past its lock timeout, and tries again
        waited = await first_wait(migrating, "index batches_completed_idx")
    finally:
        await old.rollback()
        await reader.close()
    out, _ = await asyncio.wait_for(migrating.communicate(), 120)
    assert migrating.returncode == 0, waited + out.decode()
    assert await invalid_indexes(conn) == [], "a failed build's leftover stayed behind"
    assert await conn.fetchval("SELECT to_regclass('batches_completed_idx') IS NOT NULL")


async def test_a_lock_that_never_comes_is_one_line_naming_the_setting(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    await back_to(conn, 8, ["batches_completed_idx"])
    holder = await asyncpg.connect(pg_dsn)
    held = holder.transaction()
    await held.start()
    await holder.execute("LOCK TABLE batches IN ACCESS EXCLUSIVE MODE")
    try:
        migrating = await start_migrate(pg_dsn, JOBQUEUE_MIGRATION_RETRIES="2")
        out, _ = await asyncio.wait_for(migrating.communicate(), 120)
    finally:
        await held.rollback()
        await holder.close()
    assert migrating.returncode == 1
    last = out.decode().strip().splitlines()[-1]
    assert "JOBQUEUE_MIGRATION_LOCK_TIMEOUT" in last and "pid" in last, last
