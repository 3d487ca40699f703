"""Migration 0012 against real PostgreSQL: the demand function that KEDA users scale on agrees
with the controller's own depth probe, zero-filled and paused-aware; and a worker process
records its start, phase by phase, for the controller's cold-start timeline."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from controller.depth import DepthSource
from tests.fixtures.processes import log_tail
from worker.db.claims import claim_jobs
from worker.db.jobs import NewJob, enqueue_many
from worker.runtime.startup import PHASES, PROCESS_STARTED

QUEUES = ("a", "b", "c")
DEMAND = "SELECT * FROM jobqueue_queue_demand($1::text[])"


async def _fill(conn: asyncpg.Connection, ready: dict[str, int], running: dict[str, int]) -> None:
    old = datetime.now(UTC) - timedelta(seconds=30)
    jobs = []
    for queue in QUEUES:
        jobs += [NewJob("noop", queue_name=queue, run_at=old) for _ in range(ready[queue])]
        jobs += [NewJob("noop", queue_name=queue, run_at=old) for _ in range(running[queue])]
        jobs.append(NewJob("noop", queue_name=queue, delay_seconds=3600))  # not due: no demand
    await enqueue_many(conn, jobs)
    for queue in QUEUES:
        if running[queue]:
            await claim_jobs(conn, [queue], running[queue], uuid.uuid4(), 60)


# ready and running jobs per queue, and the paused queues: corners first, then a seeded spread
CASES = [
    ({"a": 0, "b": 0, "c": 0}, {"a": 0, "b": 0, "c": 0}, set()),
    ({"a": 3, "b": 0, "c": 2}, {"a": 1, "b": 2, "c": 0}, set()),
    ({"a": 3, "b": 1, "c": 2}, {"a": 1, "b": 2, "c": 4}, {"a", "c"}),
    ({"a": 0, "b": 4, "c": 0}, {"a": 3, "b": 0, "c": 0}, {"a", "b", "c"}),
]
_spread = random.Random(27)
CASES += [
    (
        {q: _spread.randint(0, 4) for q in QUEUES},
        {q: _spread.randint(0, 4) for q in QUEUES},
        {q for q in QUEUES if _spread.random() < 0.3},
    )
    for _ in range(4)
]


@pytest.mark.parametrize(("ready", "running", "paused"), CASES)
async def test_the_demand_function_is_the_controllers_demand(
    pg_dsn: str, ready: dict[str, int], running: dict[str, int], paused: set[str]
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    source = DepthSource(pg_dsn)
    try:
        await _fill(conn, ready, running)
        for queue in paused:
            await conn.execute("INSERT INTO queues (name, paused) VALUES ($1, true)", queue)
        for subset in (["a"], ["a", "b"], list(QUEUES)):
            depth = await source.depth(subset, 1000)
            total = await conn.fetchval("SELECT jobqueue_demand($1::text[])", subset)
            assert total == depth.ready + depth.running, subset
        rows = {r["queue_name"]: r for r in await conn.fetch(DEMAND, None)}
        for queue in QUEUES:  # each queue by itself, as the per-queue gauge reports it
            depth = await source.depth([queue], 1000)
            assert (rows[queue]["ready"], rows[queue]["running"]) == (depth.ready, depth.running)
            assert rows[queue]["paused"] == (queue in paused)
    finally:
        await source.close()
        await conn.close()


async def test_an_empty_queue_reports_zeros_and_every_known_queue_is_listed(conn) -> None:
    assert await conn.fetch(DEMAND, None) == []
    await conn.execute("INSERT INTO queues (name) VALUES ('configured')")
    await enqueue_many(conn, [NewJob("noop", queue_name="busy"), NewJob("noop", queue_name="r")])
    await claim_jobs(conn, ["r"], 1, uuid.uuid4(), 60)
    rows = [tuple(r) for r in await conn.fetch(DEMAND, None)]
    assert rows == [("busy", 1, 0, False), ("configured", 0, 0, False), ("r", 0, 1, False)]
    named = [tuple(r) for r in await conn.fetch(DEMAND, ["never-used"])]
    assert named == [("never-used", 0, 0, False)]  # zero-filled, not missing
    assert await conn.fetchval("SELECT jobqueue_demand(ARRAY['never-used'])") == 0


async def test_a_worker_records_its_start_phase_by_phase(pg_dsn: str, workers, tmp_path) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await enqueue_many(conn, [NewJob("noop", {})])
        spawned = time.time()
        proc = workers(pg_dsn, JOBQUEUE_WORKER_NAME="pool-abc-1")
        deadline = time.monotonic() + 60
        while (row := await conn.fetchval("SELECT startup FROM workers")) is None:
            assert proc.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.05)
        started = await conn.fetchval("SELECT min(started_at) FROM jobs")
    finally:
        await conn.close()
    phases = json.loads(row)
    moments = [phases[PROCESS_STARTED], *(phases[p] for p in PHASES)]
    assert moments == sorted(moments), phases
    assert spawned - 1 <= phases[PROCESS_STARTED] <= phases["imported"]
    assert phases["registered"] <= started.timestamp() + 0.5  # the claim came after registering
    log = Path(tmp_path / "worker-0.log")
    deadline = time.monotonic() + 10
    while "started: imported" not in await asyncio.to_thread(log.read_text):
        assert time.monotonic() < deadline, log_tail(log)
        await asyncio.sleep(0.05)
