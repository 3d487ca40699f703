"""Rescue at the speed of death, with real `jobqueue worker` processes (docs/reliability.md,
"Liveness"): a SIGKILLed worker's jobs are pending again within seconds at the default
30 s lease; a worker behind a slow network keeps its jobs; a hung one (SIGSTOP) is rescued
by its lease only; a worker whose lock-holding connection is gone claims nothing until it
holds the lock again, whether it noticed (a cut) or not (a half-open connection).

Times are printed, never asserted: the bounds below are generous guards. What is asserted is
which rule rescued a job, read from the database (its last error, and its rescue time
`run_at` against the worker's lease)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.fixtures.doc_examples import example
from tests.fixtures.faultproxy import FaultProxy
from tests.integration.queue_handlers import RUNS_TABLE_DDL
from tests.integration.queue_support import eventually
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many
from worker.runtime.liveness import SETTLE_SECONDS

Popen = subprocess.Popen  # type: ignore[type-arg]

# The product's defaults, spelled out: the test helpers' faster ones would flatter the figure.
DEFAULTS = {
    "POLL_INTERVAL": "1",
    "JOBQUEUE_LEASE_SECONDS": "30",
    "JOBQUEUE_HEARTBEAT_SECONDS": "5",
    "JOBQUEUE_RESCUE_INTERVAL": "10",
}
RESCUER = {**DEFAULTS, "WORKER_QUEUES": "other", "JOBQUEUE_WORKER_NAME": "rescuer"}
FAST_RESCUER = {**RESCUER, "JOBQUEUE_RESCUE_INTERVAL": "0.5"}  # sweeps for dead workers too

# the backend holding a worker's liveness lock, and the port it sees its client come from
LOCK_HOLDER = """
SELECT a.pid, a.client_port
FROM workers AS w
JOIN pg_locks AS l
  ON l.locktype = 'advisory' AND l.classid = jobqueue_liveness_class()::oid
     AND l.objid = w.lock_key::oid AND l.objsubid = 2 AND l.granted
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE w.name = $1
"""


async def _alive(conn: asyncpg.Connection) -> dict[str, bool]:
    """docs/reliability.md's query of which workers are alive: name -> alive."""
    rows = await conn.fetch(example("docs/reliability.md", "workers-alive").code)
    return {row["name"]: row["alive"] for row in rows}


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(pg_dsn)
    await connection.execute(RUNS_TABLE_DDL)
    try:
        yield connection
    finally:
        await connection.close()


async def _holding(conn: asyncpg.Connection, name: str) -> asyncpg.Record:
    """Wait until the worker called `name` holds its liveness lock; its holder's row."""

    async def held() -> asyncpg.Record | None:
        return await conn.fetchrow(LOCK_HOLDER, name)

    return await eventually(held, within=60, what=f"{name} to hold its liveness lock")


async def _started(conn: asyncpg.Connection, count: int) -> None:
    async def enough() -> bool:
        starts = await conn.fetchval("SELECT count(*) FROM test_runs WHERE phase = 'start'")
        return bool(starts >= count)

    await eventually(enough, within=60, what=f"{count} jobs to start")


async def _enqueue(conn: asyncpg.Connection, count: int, seconds: float) -> list[int]:
    specs = [NewJob("test_record", {"seconds": seconds}) for _ in range(count)]
    return [job.id for job, _ in await enqueue_many(conn, specs)]


async def _all_reach(
    conn: asyncpg.Connection, ids: list[int], status: str, *, within: float, what: str
) -> None:
    async def reached() -> bool:
        return bool(
            await conn.fetchval(
                "SELECT count(*) = $2 FROM jobs WHERE id = ANY($1) AND status::text = $3",
                ids,
                len(ids),
                status,
            )
        )

    await eventually(reached, within=within, what=what)


async def _ran_once_each(conn: asyncpg.Connection, ids: list[int], worker: str) -> None:
    """Every job completed by `worker`, on its first attempt, started once."""
    rows = await conn.fetch(
        "SELECT j.status::text, j.attempts, w.name,"
        " (SELECT count(*) FROM test_runs r WHERE r.job_id = j.id AND r.phase = 'start') AS runs"
        " FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id WHERE j.id = ANY($1)",
        ids,
    )
    assert sorted(tuple(r) for r in rows) == [("completed", 1, worker, 1)] * len(ids), rows


async def test_a_sigkilled_workers_jobs_are_pending_again_within_seconds(
    conn: asyncpg.Connection, pg_dsn: str, workers: Any
) -> None:
    victim = workers(pg_dsn, **DEFAULTS, JOBQUEUE_WORKER_NAME="victim")
    workers(pg_dsn, **RESCUER)  # serves another queue: the rescued jobs stay pending
    await _holding(conn, "victim")
    await _holding(conn, "rescuer")
    ids = await _enqueue(conn, 4, seconds=300)
    await _started(conn, 4)

    async def server_settled() -> bool:  # a server that just started makes rescuers wait
        up = "SELECT now() - pg_postmaster_start_time() > make_interval(secs => $1)"
        return bool(await conn.fetchval(up, SETTLE_SECONDS + 1))

    await eventually(server_settled, within=30, what="the server to be up for a while")
    assert await _alive(conn) == {"rescuer": True, "victim": True}
    killed_at = await conn.fetchval("SELECT clock_timestamp()")
    started = time.monotonic()
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)

    # a guard below the 30 s lease, so that only the liveness rule can pass it
    await _all_reach(conn, ids, "pending", within=25, what="the killed worker's jobs to be pending")
    seen = time.monotonic() - started
    assert await _alive(conn) == {"rescuer": True, "victim": False}
    rows = await conn.fetch(
        "SELECT j.run_at - $2::timestamptz AS after, j.last_error, j.attempts,"
        " (SELECT w.lease_expires_at FROM workers w WHERE w.name = 'victim') AS lease_end,"
        " j.run_at"
        " FROM jobs j WHERE j.id = ANY($1)",
        ids,
        killed_at,
    )
    after = max(r["after"].total_seconds() for r in rows)
    print(f"SIGKILL to pending: {seen:.2f} s seen by the test, {after:.2f} s by the database")
    for row in rows:
        assert "liveness lock was free" in row["last_error"], row
        assert row["attempts"] == 1, row  # rescue uses no try of its own
        assert row["run_at"] < row["lease_end"], row  # before the lease rule could have


async def test_a_worker_behind_a_slow_network_keeps_its_jobs(
    conn: asyncpg.Connection, pg_dsn: str, proxy: FaultProxy, workers: Any
) -> None:
    """Every reply held back 0.5 s (the heartbeat's, the claims' and the sweeps' too): its
    connection, hence its lock, is alive, so no rescuer takes its jobs, although a rescuer
    sweeps every half second. (Not slower: at 1.5 s a reply, a pooled statement and the
    pool's reset take 3 s or more, and on this loaded machine the heartbeat, which shares a
    pool of two with the claims and acknowledgements, once failed to land within its 30 s
    lease, so the lease rule took the jobs. That is the lease's business, not liveness's.)"""
    workers(proxy.dsn_for(pg_dsn), **DEFAULTS, JOBQUEUE_WORKER_NAME="slow")
    workers(pg_dsn, **FAST_RESCUER)
    await _holding(conn, "slow")
    await _holding(conn, "rescuer")
    ids = await _enqueue(conn, 3, seconds=8)
    await _started(conn, 3)
    proxy.delay(0.5)

    await _all_reach(conn, ids, "completed", within=90, what="the slow worker's jobs to complete")
    proxy.delay(0)
    await _ran_once_each(conn, ids, "slow")


async def test_a_stopped_worker_is_rescued_by_its_lease_only(
    conn: asyncpg.Connection, pg_dsn: str, workers: Any
) -> None:
    """SIGSTOP: the process hangs with its connection open, so its lock stays held and only
    the lease rule can take its job. A 4 s lease keeps the test short."""
    lease = {"JOBQUEUE_LEASE_SECONDS": "4", "JOBQUEUE_HEARTBEAT_SECONDS": "0.5"}
    victim = workers(pg_dsn, **lease, JOBQUEUE_WORKER_NAME="hung")
    workers(pg_dsn, **FAST_RESCUER)
    await _holding(conn, "hung")
    await _holding(conn, "rescuer")
    (job_id,) = await _enqueue(conn, 1, seconds=300)
    await _started(conn, 1)
    started = time.monotonic()
    os.killpg(victim.pid, signal.SIGSTOP)
    try:

        async def rescued() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT j.last_error, j.run_at, w.lease_expires_at AS lease_end"
                " FROM jobs j, workers w"
                " WHERE j.id = $1 AND j.status = 'pending' AND w.name = 'hung'",
                job_id,
            )

        row = await eventually(rescued, within=60, what="the hung worker's job to be rescued")
        print(f"SIGSTOP to pending: {time.monotonic() - started:.2f} s (lease 4 s)")
        assert row["last_error"].startswith("lease expired"), row
        assert row["run_at"] >= row["lease_end"], row  # not before its lease ran out
        assert await conn.fetchrow(LOCK_HOLDER, "hung") is not None  # its lock all along
    finally:
        os.killpg(victim.pid, signal.SIGCONT)


async def test_a_worker_whose_lock_connection_is_cut_claims_nothing_until_it_holds_it(
    conn: asyncpg.Connection, pg_dsn: str, proxy: FaultProxy, workers: Any
) -> None:
    """The waker's connection is cut and cannot come back for 6 s, while the pool's
    connections work (its heartbeat lands): the worker claims nothing meanwhile, since any
    rescuer could take what it claimed. Once it holds its lock again, it claims."""
    workers(
        proxy.dsn_for(pg_dsn),
        **{**DEFAULTS, "JOBQUEUE_HEARTBEAT_SECONDS": "0.5", "JOBQUEUE_WORKER_NAME": "cut"},
    )
    holder = await _holding(conn, "cut")
    proxy.refuse(6)
    assert proxy.cut_port(holder["client_port"])
    beat = await conn.fetchval("SELECT heartbeat_at FROM workers WHERE name = 'cut'")
    ids = await _enqueue(conn, 3, seconds=0.1)

    window = time.monotonic() + 4
    while time.monotonic() < window:
        claimed = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE id = ANY($1) AND status <> 'pending'", ids
        )
        assert claimed == 0, "claimed while its liveness lock was not held"
        await asyncio.sleep(0.1)
    assert await conn.fetchval("SELECT heartbeat_at FROM workers WHERE name = 'cut'") > beat
    assert await conn.fetchrow(LOCK_HOLDER, "cut") is None

    await _all_reach(
        conn, ids, "completed", within=60, what="the jobs to run once the lock is back"
    )
    await _ran_once_each(conn, ids, "cut")


async def test_a_worker_whose_lock_session_ended_unnoticed_is_refused_its_claim(
    conn: asyncpg.Connection, pg_dsn: str, proxy: FaultProxy, workers: Any
) -> None:
    """Half-open: the server ended the waker's session (so its lock is free) but the worker
    has not noticed. Its claim is refused by the database, so it reconnects first, and a
    rescuer never takes a job from under it: each runs once. Were the claim let through, the
    rescuer would take the jobs (3 s each) within a second, and they would run twice."""
    workers(proxy.dsn_for(pg_dsn), **DEFAULTS, JOBQUEUE_WORKER_NAME="unaware")
    workers(pg_dsn, **FAST_RESCUER)
    holder = await _holding(conn, "unaware")
    await _holding(conn, "rescuer")
    assert proxy.sever_port(holder["client_port"])

    async def severed_session_ended() -> bool:
        # its lock is free, or already held again by a new session: a claim of the worker's
        # (it polls every second) may have been refused and made it reconnect in between polls
        row = await conn.fetchrow(LOCK_HOLDER, "unaware")
        return row is None or row["pid"] != holder["pid"]

    await eventually(severed_session_ended, within=30, what="the server to end the severed session")
    ids = await _enqueue(conn, 3, seconds=3)

    await _all_reach(conn, ids, "completed", within=60, what="the jobs to complete")
    await _ran_once_each(conn, ids, "unaware")
    assert await conn.fetchrow(LOCK_HOLDER, "unaware") is not None  # held again
