"""The controller's depth probe against real PostgreSQL: counts, caps, plan, LISTEN, outages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from controller.depth import DepthSource, DepthUnavailable
from worker.db import sql_files
from worker.db.claims import claim_jobs, register_worker
from worker.db.jobs import NewJob, enqueue_many


async def _fill(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        old = datetime.now(UTC) - timedelta(seconds=120)
        await enqueue_many(
            conn,
            [NewJob("noop", queue_name="a") for _ in range(5)]
            + [NewJob("noop", queue_name="b") for _ in range(3)]
            + [NewJob("noop", queue_name="a", delay_seconds=3600) for _ in range(2)]
            + [NewJob("noop", queue_name="a", priority=-5, run_at=old)],
        )
        # claims take the highest priority first, so the old low-priority job stays ready
        await claim_jobs(conn, ["a"], 2, uuid.uuid4(), 60)
    finally:
        await conn.close()


async def test_counts_ready_and_running_per_queue_set(pg_dsn: str) -> None:
    source = DepthSource(pg_dsn)
    try:
        empty = await source.depth(["a"], 100)
        assert (empty.ready, empty.running, empty.oldest_ready_seconds) == (0, 0, None)

        await _fill(pg_dsn)
        only_a = await source.depth(["a"], 100)
        assert (only_a.ready, only_a.running) == (4, 2)  # 5 + 1 old - 2 claimed; deferred skipped
        assert only_a.oldest_ready_seconds is not None and only_a.oldest_ready_seconds >= 119
        both = await source.depth(["a", "b"], 100)
        assert (both.ready, both.running) == (7, 2)
        only_b = await source.depth(["b"], 100)
        assert (only_b.ready, only_b.running) == (3, 0)
        assert only_b.oldest_ready_seconds is not None and only_b.oldest_ready_seconds < 119
    finally:
        await source.close()


async def test_counts_stop_at_the_cap(pg_dsn: str) -> None:
    await _fill(pg_dsn)
    source = DepthSource(pg_dsn)
    try:
        capped = await source.depth(["a", "b"], 3)
        assert (capped.ready, capped.running) == (3, 2)
        assert (await source.depth(["a"], 1)).running == 1
    finally:
        await source.close()


async def test_probe_uses_the_partial_indexes(pg_dsn: str) -> None:
    await _fill(pg_dsn)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("SET enable_seqscan = off")  # tiny tables would otherwise be scanned
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN " + sql_files.query("depth", "count_jobs_depth"), ["a", "b"], 10
            )
        )
    finally:
        await conn.close()
    assert "jobs_claim_idx" in plan
    assert "jobs_running_idx" in plan
    assert "Limit" in plan


async def test_in_flight_counts_only_fresh_workers(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await register_worker(conn, uuid.uuid4(), "pod-busy", ["a"], 4, 3, 60)
        await register_worker(conn, uuid.uuid4(), "pod-idle", ["a"], 4, 0, 60)
        await register_worker(conn, uuid.uuid4(), "pod-gone", ["a"], 4, 2, -1)  # lease expired
    finally:
        await conn.close()
    source = DepthSource(pg_dsn)
    try:
        counts = await source.in_flight(["pod-busy", "pod-idle", "pod-gone", "pod-unknown"])
        assert counts == {"pod-busy": 3, "pod-idle": 0}
    finally:
        await source.close()


async def test_new_jobs_are_heard_on_the_same_connection(pg_dsn: str) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    source = DepthSource(pg_dsn, on_new_job=heard.put_nowait)
    try:
        await source.depth(["emails"], 10)  # connects and listens
        conn = await asyncpg.connect(pg_dsn)
        try:
            await enqueue_many(conn, [NewJob("noop", queue_name="emails")])
        finally:
            await conn.close()
        assert await asyncio.wait_for(heard.get(), timeout=30) == "emails"
    finally:
        await source.close()


@pytest.mark.timeout(180)
async def test_outage_raises_then_reconnects(private_pg_server) -> None:
    dsn = await private_pg_server.create_database("depth")
    source = DepthSource(dsn, timeout=2.0)
    try:
        assert (await source.depth(["a"], 10)).ready == 0
        private_pg_server.stop()
        with pytest.raises(DepthUnavailable):
            await source.depth(["a"], 10)
        with pytest.raises(DepthUnavailable):
            await source.depth(["a"], 10)  # still down: a new connection fails too
        private_pg_server.start()
        assert (await source.depth(["a"], 10)).ready == 0
    finally:
        await source.close()
