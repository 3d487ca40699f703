"""How a migration file is split: the statements its transaction runs, and the index builds
marked to run CONCURRENTLY after it."""

from __future__ import annotations

import re

import pytest

from worker.db.migrate import Migration, available_migrations
from worker.db.migrate_steps import MARKER, LockPolicy, plan

LARGE_TABLES = ("jobs", "batches")
_IN_TRANSACTION = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?\w+\s+ON\s+(\w+)", re.IGNORECASE
)


def test_marked_builds_leave_the_transaction() -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS t (id int);\n"
        f"{MARKER}: the large table\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_idx\n    ON jobs (id)\n"
        "    WHERE id > 0;\n"
        "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
    )
    steps = plan(sql)
    assert [(b.name, b.table) for b in steps.concurrent] == [("t_idx", "jobs")]
    assert steps.concurrent[0].statement.startswith("CREATE UNIQUE INDEX CONCURRENTLY")
    assert "t_idx" not in steps.transactional and "FUNCTION f()" in steps.transactional
    assert steps.has_transactional
    assert not plan(f"-- only a comment\n{MARKER}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a "
                    "ON jobs (id);\n").has_transactional  # fmt: skip


@pytest.mark.parametrize("migration", available_migrations()[1:], ids=lambda m: m.name)
def test_indexes_on_large_tables_are_built_concurrently(migration: Migration) -> None:
    """Every migration after the first builds its indexes on jobs and batches CONCURRENTLY:
    on a live system those tables are large, and a plain build stops every write to them."""
    for table in _IN_TRANSACTION.findall(plan(migration.sql).transactional):
        assert table.lower() not in LARGE_TABLES, (
            f"{migration.version:04d}_{migration.name}: an index on {table} is built in the "
            f"migration's transaction; mark it with {MARKER!r} and CONCURRENTLY"
        )


def test_tries_back_off_up_to_a_bound() -> None:
    policy = LockPolicy(lock_timeout=1, retries=10, max_pause=8)
    assert [policy.pause(n) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
