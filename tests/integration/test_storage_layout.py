"""The storage layout's check (migrations 0015 and 0017, docs/upgrading.md): a worker claims
only from a layout that serves the statements it was written for. This release writes layout 2
(the ready ring), which still serves layout 1's claims: `jobs` is the truth, so an older
worker keeps claiming during a rolling upgrade. A later layout that moves the jobs raises
`jobqueue_oldest_claim_layout()` in the migration that moves them; every older worker still
running must then stop claiming, say so in one line, finish what it runs, and exit, instead of
acting on tables it does not know.

Here the database is moved to "layout 3" the way such a migration will do it (the two
functions redefined, nothing else), under a real `jobqueue worker` process: before it starts,
and while it runs with its claim statement already prepared.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from jobqueue.dev.postgres import find_pg_bin_dir
from tests.fixtures.doc_examples import run_bash_example
from tests.fixtures.processes import log_tail, stop_process, wait_until
from tests.integration.queue_support import eventually, start_worker_process
from worker.db import claims
from worker.db.errors import LayoutMismatch
from worker.db.jobs import NewJob, enqueue_many
from worker.db.migrate import expected_version

# What a migration to a layout that no longer serves layout 2's claims does, in its own
# transaction.
LAYOUT_3 = (
    "CREATE OR REPLACE FUNCTION jobqueue_storage_layout() RETURNS integer "
    "LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT 3 $$;"
    "CREATE OR REPLACE FUNCTION jobqueue_oldest_claim_layout() RETURNS integer "
    "LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT 3 $$"
)
REFUSAL = "the database has storage layout 3, this worker knows layout 2"


def _exited(proc: subprocess.Popen[bytes], log: Path, within: float = 60) -> int:
    try:
        wait_until(lambda: proc.poll() is not None, timeout=within, what="the worker to exit")
    except TimeoutError:
        stop_process(proc)
        raise AssertionError(f"the worker kept running:\n{log_tail(log)}") from None
    return int(proc.returncode)


async def _exits_saying_to_migrate(conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path) -> None:
    """A worker of this release on an older schema stops at its first claim, taking nothing."""
    await enqueue_many(conn, [NewJob("test_sleep")])
    log = tmp_path / "worker.log"
    proc = start_worker_process(pg_dsn, log)
    assert _exited(proc, log) == 2, log_tail(log)
    last = log.read_text().strip().splitlines()[-1]
    assert last.endswith("run jobqueue migrate with this release"), log_tail(log)
    assert await conn.fetchval("SELECT status::text FROM jobs") == "pending"


def _refusal_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if REFUSAL in line]


def test_the_upgrade_steps_of_the_docs_migrate_and_report_layout_2(
    pg_dsn_empty: str, tmp_path: Path
) -> None:
    path = os.pathsep.join(
        [str(find_pg_bin_dir()), str(Path(sys.executable).parent), "/usr/bin:/bin"]
    )
    env = {"DB_URL": pg_dsn_empty, "PATH": path, "HOME": str(tmp_path)}
    done = run_bash_example("docs/upgrading.md", "upgrade-steps", env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == [str(expected_version()), "2"], done.stdout


async def test_the_database_reports_layout_2_and_claims_pass(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval("SELECT jobqueue_storage_layout()") == 2
    await enqueue_many(conn, [NewJob("noop")])
    assert len(await claims.claim_jobs(conn, ["default"], 5, uuid.uuid4(), 30.0)) == 1


async def test_layout_2_serves_layout_1s_claims_and_refuses_a_newer_one(
    conn: asyncpg.Connection,
) -> None:
    """A release written for layout 1 (0015 and 0016) claims on: its gate passes. One written
    for a layout the database does not have yet is told to migrate."""
    assert await conn.fetchval("SELECT jobqueue_layout_gate(1)") is True
    with pytest.raises(asyncpg.PostgresError, match="this worker knows layout 3") as refused:
        await conn.fetchval("SELECT jobqueue_layout_gate(3)")
    assert refused.value.sqlstate == "JQ002"
    assert refused.value.hint == "run jobqueue migrate with this release"  # type: ignore[attr-defined]


async def test_a_worker_on_a_database_before_the_ring_says_to_migrate(
    conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path
) -> None:
    """A schema from between migrations 0015 and 0017 (a gate, no ready ring): this release's
    claim names a table that is not there; the worker stops at its first claim."""
    for trigger in ("jobs_ready_inserted", "jobs_ready_updated"):
        await conn.execute(f"DROP TRIGGER {trigger} ON jobs")
    await conn.execute("DROP TABLE job_ready")
    await _exits_saying_to_migrate(conn, pg_dsn, tmp_path)


async def test_a_claim_on_another_layout_is_refused_and_takes_nothing(
    conn: asyncpg.Connection,
) -> None:
    await enqueue_many(conn, [NewJob("noop") for _ in range(3)])
    await conn.execute(LAYOUT_3)
    with pytest.raises(LayoutMismatch, match=REFUSAL):
        await claims.claim_jobs(conn, ["default"], 5, uuid.uuid4(), 30.0)
    statuses = await conn.fetch("SELECT status::text, attempts FROM jobs")
    assert [tuple(row) for row in statuses] == [("pending", 0)] * 3


async def test_a_worker_started_on_a_newer_layout_exits_in_one_line(
    conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path
) -> None:
    await enqueue_many(conn, [NewJob("test_sleep") for _ in range(3)])
    await conn.execute(LAYOUT_3)
    log = tmp_path / "worker.log"
    proc = start_worker_process(pg_dsn, log)
    assert _exited(proc, log) == 2, log_tail(log)
    text = log.read_text()
    assert "Traceback" not in text, text
    # the log's line, and the last line (what a pod's termination message shows)
    assert len(_refusal_lines(log)) == 2, text
    assert REFUSAL in text.strip().splitlines()[-1]
    assert "run the release that migrated the database" in text.strip().splitlines()[-1]
    statuses = await conn.fetch("SELECT status::text, attempts FROM jobs")
    assert [tuple(row) for row in statuses] == [("pending", 0)] * 3


async def test_a_running_worker_finishes_its_job_then_stops_claiming(
    conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    proc = start_worker_process(pg_dsn, log)
    try:
        ((slow, _),) = await enqueue_many(conn, [NewJob("test_sleep", {"seconds": 2})])

        async def running() -> bool:
            status = await conn.fetchval("SELECT status::text FROM jobs WHERE id = $1", slow.id)
            return status == "running"

        await eventually(running, what="the slow job to start")
        # The migration commits while the job runs and the claim statement is prepared.
        await conn.execute(LAYOUT_3)
        ((late, _),) = await enqueue_many(conn, [NewJob("test_sleep")])
        assert _exited(proc, log) == 2, log_tail(log)
    finally:
        stop_process(proc)
    rows = {
        row["id"]: (row["status"], row["attempts"])
        for row in await conn.fetch("SELECT id, status::text AS status, attempts FROM jobs")
    }
    assert rows == {slow.id: ("completed", 1), late.id: ("pending", 0)}, log_tail(log)
    assert "Traceback" not in log.read_text(), log_tail(log)


async def test_a_worker_on_a_database_not_yet_migrated_says_to_migrate(
    conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path
) -> None:
    """A schema from before migration 0015 (no gate): the worker stops at its first claim."""
    await conn.execute("DROP FUNCTION jobqueue_layout_gate(integer)")
    await _exits_saying_to_migrate(conn, pg_dsn, tmp_path)
