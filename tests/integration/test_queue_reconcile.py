"""The invariant: every `running` row is held by a live worker's runtime, or comes back.

A live worker heartbeats, so neither its lease nor its jobs' leases expire and rescue never
touches its rows; the reconcile at each heartbeat is what brings back a row it lost track of."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from tests.fixtures.faultproxy import FaultProxy
from tests.integration.queue_support import eventually, running_worker
from worker.db import sql_files
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue, enqueue_many
from worker.handlers.base import HandlerRegistry, JobContext


async def test_a_running_row_the_worker_does_not_hold_comes_back(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    reg = HandlerRegistry()
    async with running_worker(pg_dsn, reg, lease_seconds=3.0, heartbeat_seconds=0.5) as w:
        # What a lost claim reply leaves behind: a row claimed under this live worker's id
        # that its runtime never received (on a queue it does not serve, so that nothing
        # claims it again and the test sees the row come back as it was).
        job_id = (await enqueue(conn, NewJob("echo", {}, queue_name="elsewhere")))[0].id
        await conn.execute(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, worker_id = $2,"
            " started_at = now(), lease_expires_at = now() + interval '3 seconds'"
            " WHERE id = $1",
            job_id,
            w.id,
        )

        async def back() -> bool:
            row = await conn.fetchrow(
                "SELECT status::text, attempts FROM jobs WHERE id = $1", job_id
            )
            assert row is not None
            return bool(row["status"] == "pending")

        await eventually(back, what="the row the worker does not hold to come back")
        # it never started, so no try was used up
        assert await conn.fetchval("SELECT attempts FROM jobs WHERE id = $1", job_id) == 0
        assert await conn.fetchval("SELECT worker_id FROM jobs WHERE id = $1", job_id) is None


async def test_lost_claim_replies_lose_no_job_and_run_none_twice(pg_dsn: str) -> None:
    url = urlsplit(pg_dsn)
    assert url.hostname is not None and url.port is not None
    proxy = await FaultProxy(url.hostname, url.port, seed=7).start()
    runs: Counter[tuple[int, int]] = Counter()
    reg = HandlerRegistry()

    @reg.register("count")
    async def count(payload: dict[str, Any], ctx: JobContext) -> Any:
        runs[(ctx.job_id, ctx.attempt)] += 1
        await asyncio.sleep(0.005)
        return {"attempt": ctx.attempt}

    conn = await connect(pg_dsn)
    try:
        jobs = await enqueue_many(conn, [NewJob("count", {"n": n}) for n in range(300)])
        ids = [job.id for job, _ in jobs]
        settings: dict[str, Any] = {"lease_seconds": 3.0, "heartbeat_seconds": 0.5}
        async with running_worker(proxy.dsn_for(pg_dsn), reg, max_concurrent_jobs=8, **settings):
            for n in range(24):  # replies dropped after the server ran the statement, and cuts
                if n % 3 == 2:
                    proxy.cut_random()
                else:
                    proxy.drop_replies(1)
                await asyncio.sleep(0.15)

            async def done() -> bool:
                left = await conn.fetchval(
                    "SELECT count(*) FROM jobs WHERE status::text <> 'completed'"
                )
                return bool(left == 0)

            await eventually(done, within=90, what="every job to complete")
        assert proxy.dropped_replies + proxy.cuts >= 20
        assert max(runs.values()) == 1, "a (job, attempt) ran twice"
        rows = await conn.fetch("SELECT id, attempts, result FROM jobs WHERE id = ANY($1)", ids)
        assert len(rows) == len(ids)
        for row in rows:  # each stored result comes from the attempt that completed the job
            assert row["result"] == {"attempt": row["attempts"]}
            assert runs[(row["id"], row["attempts"])] == 1
    finally:
        await conn.close()
        await proxy.close()


async def test_the_reconcile_reads_only_the_workers_own_rows(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        await conn.execute("SET enable_seqscan = off")  # tiny tables would otherwise be scanned
        sql = sql_files.query("claims", "release_unknown_jobs")
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN " + sql, "00000000-0000-0000-0000-000000000001", [1, 2]
            )
        )
    finally:
        await conn.close()
    assert "jobs_worker_running_idx" in plan, plan
