"""A pinned xmin horizon must not slow the claim (issue 22): while a transaction elsewhere holds
the horizon back, claim and complete thousands of jobs through the product's own functions,
and measure one claim early in the pin and one late. The shared buffers it touched (from its
`EXPLAIN (ANALYZE, BUFFERS)`) and the index entries it read (pg_stat_get_xact_tuples_returned
over every index of ours, found in the catalog) must not grow with the jobs claimed since the
pin began.

Layout 1 failed this, and that is the point: every claim and acknowledgement updated the
job's row, the pin kept every old version, and the claim's index scan started at the oldest
entries, which were exactly the ones earlier claims took. So one claim of 10 read an entry for
every job claimed while pinned. Layout 2 (docs/storage.md, migration 0017) finds the work in a
ready ring whose slots are truncated as claims empty them, so it passes. The test keys on the
layout the database reports (`jobqueue_storage_layout()`, migration 0015; absent before it,
meaning layout 1): on an older layout it is marked `xfail(strict=True)`, so it must fail
there, and a pass on one fails the run, since that would mean the test no longer measures
what it says.

No timed asserts: buffers and index entries are counts. The figures are printed.

The plan is taken with auto_explain (log_analyze, log_buffers, at NOTICE level, so that it
comes back on this connection), so the measured claim is whatever statement the product's
`claims.claim_jobs` runs, on any layout.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from worker.db import claims, ready, workers
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many
from worker.runtime.ring import MOVE_PER_TURN, TURN_EVERY_MS

NEW_LAYOUT = 2  # docs/storage.md
ROUND = 250  # jobs enqueued, claimed and completed per round
BATCH = 50  # claimed at a time
EARLY, LATE = 2, 20  # measure after these rounds under the pin: 500 and 5,000 jobs

# Every index of ours (not the catalog's): what a claim reads, on any layout.
INDEX_ENTRIES_READ = """
SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)::bigint
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""
AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_buffers = on",
    "SET auto_explain.log_timing = off",
    "SET auto_explain.log_format = json",
    "SET auto_explain.log_level = notice",
)


class ClaimGrewUnderPin(AssertionError):
    """The one failure the xfail marker expects: anything else (auto_explain missing, a
    claim that took no job) fails the test on every layout."""


@dataclass
class ClaimCost:
    claimed_before: int  # jobs claimed while pinned, before this claim
    rows: int
    buffers: int  # shared buffers hit or read by the claim's plan
    index_entries: int


async def _layout(conn: asyncpg.Connection) -> int:
    if await conn.fetchval("SELECT to_regproc('jobqueue_storage_layout') IS NULL"):
        return 1  # the layout from before migration 0015 named it
    return int(await conn.fetchval("SELECT jobqueue_storage_layout()"))


@pytest.fixture
async def conn(pg_dsn: str, request: pytest.FixtureRequest) -> Any:
    connection = await connect(pg_dsn)
    layout = await _layout(connection)
    if layout < NEW_LAYOUT:
        reason = f"the database reports storage layout {layout}; the claim degrades under a pin"
        marker = pytest.mark.xfail(reason=reason, strict=True, raises=ClaimGrewUnderPin)
        request.node.add_marker(marker)
    try:
        yield connection
    finally:
        await connection.close()


def _buffers(node: dict[str, Any]) -> int:
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


class Explained:
    """The plans auto_explain sends back as notices while it is on."""

    def __init__(self) -> None:
        self.plans: list[dict[str, Any]] = []

    def __call__(self, _conn: object, message: Any) -> None:
        text = str(getattr(message, "message", ""))
        if "plan:" in text:
            self.plans.append(json.loads(text.split("plan:", 1)[1]))


async def _measure(conn: asyncpg.Connection, worker: uuid.UUID, claimed_before: int) -> ClaimCost:
    """One claim of 10 by the product's claim function, measured, then completed (so the
    measurement is part of the workload)."""
    await enqueue_many(conn, [NewJob("noop") for _ in range(10)])
    explained = Explained()
    conn.add_log_listener(explained)
    try:
        async with conn.transaction():
            for statement in AUTO_EXPLAIN:
                await conn.execute(statement)
            before = await conn.fetchval(INDEX_ENTRIES_READ)
            explained.plans.clear()
            jobs = await claims.claim_jobs(conn, ["default"], 10, worker, 30.0)
            plans = list(explained.plans)
            after = await conn.fetchval(INDEX_ENTRIES_READ)
            await conn.execute("SET auto_explain.log_min_duration = -1")
    finally:
        conn.remove_log_listener(explained)
    await _complete(conn, worker, jobs)
    if not plans:
        raise RuntimeError("auto_explain sent no plan for the claim")
    return ClaimCost(
        claimed_before=claimed_before,
        rows=len(jobs),
        buffers=sum(_buffers(plan["Plan"]) for plan in plans),
        index_entries=int(after - before),
    )


async def _complete(conn: asyncpg.Connection, worker: uuid.UUID, jobs: list[Any]) -> None:
    ids, attempts = [j.id for j in jobs], [j.attempts for j in jobs]
    done = await claims.complete_jobs(conn, worker, ids, attempts, ["null"] * len(jobs))
    if done != len(jobs):
        raise RuntimeError(f"completed {done} of the {len(jobs)} jobs claimed")


async def _round(conn: asyncpg.Connection, worker: uuid.UUID) -> int:
    """Enqueue ROUND jobs and take them all through: claim in batches, complete. A round lasts
    one turn of the ready ring (layout 2), which every worker's `ready ring` service calls
    about once a second; here it is called at the end of each round, with the service's own
    arguments. On layout 1 there is no ring, and nothing to wait for."""
    started = time.monotonic()
    await enqueue_many(conn, [NewJob("noop") for _ in range(ROUND)])
    claimed = 0
    while jobs := await claims.claim_jobs(conn, ["default"], BATCH, worker, 30.0):
        await _complete(conn, worker, jobs)
        claimed += len(jobs)
    if await _layout(conn) >= NEW_LAYOUT:
        await asyncio.sleep(max(0.0, started + TURN_EVERY_MS / 1000 - time.monotonic()))
        await ready.turn(conn, TURN_EVERY_MS, MOVE_PER_TURN)
    return claimed


async def test_a_claim_does_not_grow_with_the_jobs_claimed_while_the_horizon_is_pinned(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    worker = uuid.uuid4()
    await workers.register_worker(conn, worker, "pinned-horizon", ["default"], BATCH, 0, 30.0)
    await _round(conn, worker)  # warm: plans cached, statistics gathered
    await conn.execute("VACUUM ANALYZE")

    # The pin: an idle transaction that took an xid, as a forgotten BEGIN does. It never
    # reads our tables, so it holds no lock on them.
    pin = await connect(pg_dsn)
    try:
        await pin.execute("BEGIN")
        await pin.fetchval("SELECT txid_current()")
        claimed = 0
        samples: list[ClaimCost] = []
        for number in range(1, LATE + 1):
            claimed += await _round(conn, worker)
            if number in (EARLY, LATE):
                samples.append(await _measure(conn, worker, claimed))
        horizon = await conn.fetchval(
            "SELECT max(age(backend_xid)) FROM pg_stat_activity WHERE pid = $1",
            pin.get_server_pid(),
        )
    finally:
        pin.terminate()

    early, late = samples
    for sample in samples:
        print(
            f"claim of 10 after {sample.claimed_before} jobs claimed while pinned: "
            f"{sample.rows} rows, {sample.buffers} buffers, {sample.index_entries} index entries"
        )
    print(f"the pin's xid was {horizon} transactions old at the end")
    if not early.rows == late.rows == 10:
        raise RuntimeError(f"a measured claim did not take 10 jobs: {samples}")
    # Ten times the jobs claimed while pinned: the cost may wobble, but not follow them.
    if late.index_entries > 2 * early.index_entries + 100 or late.buffers > 2 * early.buffers + 100:
        raise ClaimGrewUnderPin(
            f"the claim's cost grew with the jobs claimed while pinned: {samples}"
        )
