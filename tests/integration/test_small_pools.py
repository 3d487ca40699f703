"""A small pool's slot refills while the last job's acknowledgement is being written, and its
connections go back to the pool without a reset's round trip.

Most users run a few slots per process (the chart's default is 3). When a slot was held until
the acknowledgement landed, each job cost two round trips in a row, a claim and then an ack,
and a slow acknowledgement kept the slot empty. Now a slot frees when the handler returns,
and the next claim overlaps the write (worker.runtime.tracker). This runs `jobqueue worker`
with one slot and makes the first job's acknowledgement wait on a row lock."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.fixtures.processes import log_tail, stop_process
from tests.integration.queue_handlers import RUNS_TABLE_DDL
from tests.integration.queue_support import eventually, start_worker_process
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many


async def _status(conn: asyncpg.Connection, job_id: int) -> str:
    return str(await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


async def test_one_slot_runs_the_next_job_while_the_last_acknowledgement_waits(
    conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path
) -> None:
    await conn.execute(RUNS_TABLE_DDL)
    log = tmp_path / "worker.log"
    proc = start_worker_process(pg_dsn, log, MAX_CONCURRENT_JOBS="1")
    locker = await connect(pg_dsn)
    try:
        [(first, _)] = await enqueue_many(conn, [NewJob("test_sleep", {"seconds": 2})])

        async def first_running() -> bool:
            return await _status(conn, first.id) == "running"

        await eventually(first_running, within=30, what="the first job to start")
        # While it runs, another session locks its row: its acknowledgement will wait for it.
        await locker.execute("BEGIN")
        locked = await locker.fetchval("SELECT status FROM jobs WHERE id = $1 FOR UPDATE", first.id)
        assert locked == "running", "the first job finished before its row could be locked"
        [(second, _)] = await enqueue_many(conn, [NewJob("test_record", {"seconds": 0})])

        async def second_ran() -> bool:
            ends = "SELECT count(*) FROM test_runs WHERE job_id = $1 AND phase = 'end'"
            return bool(await conn.fetchval(ends, second.id) == 1)

        # The one slot is free once the first handler returns, acknowledged or not.
        await eventually(second_ran, within=20, what="the second job to run in the one slot")
        assert await _status(conn, first.id) == "running"  # its acknowledgement still waits
        await locker.execute("ROLLBACK")

        async def both_completed() -> bool:
            return {await _status(conn, first.id), await _status(conn, second.id)} == {"completed"}

        await eventually(both_completed, within=20, what="both acknowledgements to land")
        tries = "SELECT attempts FROM jobs WHERE id = ANY($1)"
        assert [row[0] for row in await conn.fetch(tries, [first.id, second.id])] == [1, 1]
        assert await conn.fetchval("SELECT count(*) FROM test_runs") == 2  # one start, one end
    finally:
        await locker.close()
        stop_process(proc)
    assert "Traceback" not in log.read_text(), log_tail(log)


async def test_the_workers_pooled_connections_are_not_reset_after_every_use(
    conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path
) -> None:
    """asyncpg resets a connection the pool takes back (RESET ALL, UNLISTEN *, ...), a round
    trip that each claim and each acknowledgement waited on. The worker's own statements leave
    no session state, so its pool skips it: what a DBA sees in pg_stat_activity as a worker
    connection's last statement is the worker's own, never a reset."""
    log = tmp_path / "worker.log"
    proc = start_worker_process(pg_dsn, log, MAX_CONCURRENT_JOBS="2")
    try:
        await enqueue_many(conn, [NewJob("test_sleep", {"seconds": 0}) for _ in range(50)])

        async def all_completed() -> bool:
            done = "SELECT count(*) FROM jobs WHERE status = 'completed'"
            return bool(await conn.fetchval(done) == 50)

        await eventually(all_completed, within=30, what="the worker to run 50 jobs")
        last = await conn.fetch(
            "SELECT query FROM pg_stat_activity WHERE application_name LIKE 'jobqueue-worker%'"
        )
        assert len(last) >= 2  # the LISTEN connection and at least one pooled one
        assert not [row[0] for row in last if "RESET ALL" in row[0]]
    finally:
        stop_process(proc)
    assert "Traceback" not in log.read_text(), log_tail(log)
