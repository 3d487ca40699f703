"""`jobqueue worker` processes against real PostgreSQL: many claimers, SIGKILL, SIGTERM, and a
PostgreSQL restart under load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

import asyncpg

from tests.integration.queue_handlers import RUNS_TABLE_DDL
from tests.integration.queue_support import all_finished, eventually
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many, get_job

Popen = subprocess.Popen  # type: ignore[type-arg]


async def _prepare(dsn: str) -> asyncpg.Connection:
    conn = await connect(dsn)
    await conn.execute(RUNS_TABLE_DDL)
    return conn


async def _registered(conn: asyncpg.Connection, count: int) -> None:
    async def enough() -> bool:
        return await conn.fetchval("SELECT count(*) FROM workers") >= count

    await eventually(enough, what=f"{count} workers to register")


async def test_many_claimers_in_many_processes_run_every_job_once(
    pg_dsn: str, workers: Any
) -> None:
    conn = await _prepare(pg_dsn)
    try:
        for _ in range(3):
            workers(pg_dsn, MAX_CONCURRENT_JOBS="8")
        await _registered(conn, 3)
        total = 0
        for _ in range(6):  # arriving while the workers claim
            await enqueue_many(conn, [NewJob("test_record") for _ in range(250)])
            total += 250
        await all_finished(conn)
        statuses = await conn.fetch("SELECT status, attempts, count(*) FROM jobs GROUP BY 1, 2")
        assert [(r["status"], r["attempts"], r["count"]) for r in statuses] == [
            ("completed", 1, total)
        ]
        runs = await conn.fetchrow(
            """SELECT count(*) AS runs, count(DISTINCT job_id) AS jobs,
                      count(DISTINCT worker_id) AS workers
               FROM test_runs WHERE phase = 'end'"""
        )
        assert (runs["runs"], runs["jobs"]) == (total, total)
        assert runs["workers"] > 1  # the work was really shared
    finally:
        await conn.close()


async def test_a_killed_workers_job_is_rescued_and_completed_once(
    pg_dsn: str, workers: Any
) -> None:
    conn = await _prepare(pg_dsn)
    lease = {"JOBQUEUE_LEASE_SECONDS": "2", "JOBQUEUE_HEARTBEAT_SECONDS": "0.5"}
    try:
        victim = workers(pg_dsn, **lease)
        await _registered(conn, 1)
        ((job, _),) = await enqueue_many(conn, [NewJob("test_record", {"seconds": 3})])

        async def started() -> bool:
            return await conn.fetchval("SELECT count(*) FROM test_runs WHERE phase = 'start'")

        await eventually(started, what="the job to start")
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(30)

        workers(pg_dsn, **lease)

        async def finished() -> Any:
            current = await get_job(conn, job.id)
            return current if current and current.status == "completed" else None

        done = await eventually(finished, what="the rescued job to complete")
        assert done.attempts == 2
        assert done.result == {"job_id": job.id, "attempt": 2}
        runs = await conn.fetch("SELECT phase, attempt FROM test_runs ORDER BY at")
        assert [(r["phase"], r["attempt"]) for r in runs] == [
            ("start", 1),
            ("start", 2),
            ("end", 2),
        ]
    finally:
        await conn.close()


async def test_sigterm_drains_running_jobs_and_leaves_the_rest(pg_dsn: str, workers: Any) -> None:
    conn = await _prepare(pg_dsn)
    try:
        proc = workers(pg_dsn, MAX_CONCURRENT_JOBS="2", JOBQUEUE_DRAIN_TIMEOUT="30")
        await _registered(conn, 1)
        await enqueue_many(conn, [NewJob("test_record", {"seconds": 1.5}) for _ in range(5)])

        async def two_started() -> bool:
            return await conn.fetchval("SELECT count(*) FROM test_runs WHERE phase = 'start'") == 2

        await eventually(two_started, what="two jobs to start")
        os.killpg(proc.pid, signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        rows = await conn.fetch("SELECT status, attempts, count(*) FROM jobs GROUP BY 1, 2")
        assert sorted((r["status"], r["attempts"], r["count"]) for r in rows) == [
            ("completed", 1, 2),
            ("pending", 0, 3),
        ]
        assert await conn.fetchval("SELECT count(*) FROM test_runs WHERE phase = 'end'") == 2
        assert await conn.fetchval("SELECT count(*) FROM workers") == 0
    finally:
        await conn.close()


async def test_workers_ride_out_a_postgres_restart(private_pg_server: Any, workers: Any) -> None:
    dsn = await private_pg_server.create_database("restart")
    conn = await connect(dsn)
    procs = [workers(dsn, MAX_CONCURRENT_JOBS="4") for _ in range(2)]
    try:
        await _registered(conn, 2)
        worker_ids = {r["id"] for r in await conn.fetch("SELECT id FROM workers")}
        await enqueue_many(conn, [NewJob("test_sleep", {"seconds": 0.02}) for _ in range(600)])

        async def under_way() -> bool:
            return await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'completed'") >= 50

        await eventually(under_way, what="the workers to get going")
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'pending'") > 0
        await conn.close()
        private_pg_server.restart()

        conn = await connect(dsn)
        await enqueue_many(conn, [NewJob("test_sleep", {"seconds": 0.01}) for _ in range(200)])
        await all_finished(conn)
        rows = await conn.fetch("SELECT status, count(*) FROM jobs GROUP BY 1")
        assert [(r["status"], r["count"]) for r in rows] == [("completed", 800)]
        # the same processes did it all: none restarted
        assert all(proc.poll() is None for proc in procs)
        late = await conn.fetch(
            "SELECT DISTINCT worker_id FROM jobs WHERE id > (SELECT max(id) - 200 FROM jobs)"
        )
        assert {r["worker_id"] for r in late} <= worker_ids
    finally:
        await conn.close()
