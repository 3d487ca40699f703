"""The schema commands: the seed's `python -m worker.db.create_tables`, and `jobqueue migrate`
run by two pods at once."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from tests.integration.queue_support import REPO
from worker.db.migrate import available_migrations


async def _run(*args: str, dsn: str) -> tuple[int, str]:
    env = {**os.environ, "DB_URL": dsn, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env=env,
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def _schema(dsn: str) -> tuple[list[int], list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        versions = [
            r[0]
            for r in await conn.fetch(
                "SELECT version FROM jobqueue_schema_version ORDER BY version"
            )
        ]
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return versions, tables
    finally:
        await conn.close()


async def test_create_tables_keeps_the_seed_messages(pg_dsn_empty: str) -> None:
    code, out = await _run("-m", "worker.db.create_tables", dsn=pg_dsn_empty)
    assert code == 0, out
    assert "Creating tables..." in out and "Tables created successfully!" in out
    versions, tables = await _schema(pg_dsn_empty)
    assert versions == [m.version for m in available_migrations()]
    assert {"jobs", "workers", "jobqueue_schema_version"} <= set(tables)
    # and again, on a schema that is already there
    code, out = await _run("-m", "worker.db.create_tables", dsn=pg_dsn_empty)
    assert code == 0 and "Tables created successfully!" in out


async def test_two_migrations_at_once_are_safe(pg_dsn_empty: str) -> None:
    results = await asyncio.gather(
        *(_run("-m", "worker", "migrate", dsn=pg_dsn_empty) for _ in range(2))
    )
    assert [code for code, _ in results] == [0, 0], results
    outputs = sorted(out.strip().splitlines()[-1] for _, out in results)
    # migrations are numbered per feature, so the sequence may have gaps
    everything = [m.version for m in available_migrations()]
    # one applied everything while holding the lock; the other then found nothing to do
    assert outputs == [f"applied migrations: {everything}", "schema is up to date"]
    versions, _ = await _schema(pg_dsn_empty)
    assert versions == everything


async def test_create_tables_reports_an_unreachable_database() -> None:
    code, out = await _run(
        "-m", "worker.db.create_tables", dsn="postgresql://nobody@127.0.0.1:1/none"
    )
    assert code == 1
    assert "Creating tables..." in out and "cannot reach PostgreSQL at 127.0.0.1:1" in out
