"""The job statuses have one home in Python (worker.db.statuses); the SQL enum must agree."""

from __future__ import annotations

from worker.db.connection import connect
from worker.db.statuses import JOB_STATUSES


async def test_the_sql_enum_holds_the_same_statuses_in_the_same_order(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        in_sql = await conn.fetchval("SELECT enum_range(NULL::job_status)::text[]")
    finally:
        await conn.close()
    assert tuple(in_sql) == JOB_STATUSES
    assert "blocked" in JOB_STATUSES  # added by migration 0004
