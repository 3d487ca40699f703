"""The liveness lock's SQL (migration 0014), against real PostgreSQL: a worker's lock key, the
session that holds it, the claim's gate, and the rescue of a dead worker's jobs, still fenced.
The processes that use it are in test_rescue_speed.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.integration.queue_support import complete_claimed
from worker.db import claims, maintenance, workers
from worker.db.connection import connect
from worker.db.errors import LivenessLost
from worker.db.jobs import NewJob, enqueue_many
from worker.db.listen import PROBE_SECONDS, Listener
from worker.runtime.liveness import Liveness, lock_connect_kwargs
from worker.runtime.rescuer import rescue_dead_once
from worker.settings import DatabaseTimeouts


@pytest.fixture
async def holder(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A session of its own, standing for a worker's LISTEN connection."""
    connection = await connect(pg_dsn)
    try:
        yield connection
    finally:
        connection.terminate()


async def _worker(conn: asyncpg.Connection, key: int | None) -> uuid.UUID:
    worker = uuid.uuid4()
    await workers.register_worker(conn, worker, "w", ["default"], 4, 0, 30.0, key)
    return worker


async def _rescue(conn: asyncpg.Connection) -> maintenance.RescueResult:
    return await maintenance.rescue_dead_workers(conn, settle_seconds=0)


async def test_a_live_workers_jobs_stay_and_a_dead_ones_come_back_fenced(
    conn: asyncpg.Connection, holder: asyncpg.Connection
) -> None:
    key = await workers.next_lock_key(conn)
    await workers.hold_liveness(holder, key)
    worker = await _worker(conn, key)
    await enqueue_many(conn, [NewJob("t") for _ in range(3)])
    jobs = await claims.claim_jobs(conn, ["default"], 3, worker, 30.0, key)
    assert len(jobs) == 3

    assert await _rescue(conn) == maintenance.RescueResult(0, 0)  # held: alive

    holder.terminate()  # the process dies: the server ends its session and frees the lock
    rescued = await _wait_for_rescue(conn)
    assert rescued == maintenance.RescueResult(3, 0)
    rows = await conn.fetch("SELECT status, worker_id, attempts, last_error FROM jobs")
    assert {(r["status"], r["worker_id"], r["attempts"]) for r in rows} == {("pending", None, 1)}
    assert all("liveness lock was free" in r["last_error"] for r in rows)

    # A worker that was only slow acknowledges late: nothing changes.
    assert await complete_claimed(conn, worker, jobs) == 0
    assert await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'pending'") == 3
    # ... and it cannot claim again until it holds its lock
    with pytest.raises(LivenessLost):
        await claims.claim_jobs(conn, ["default"], 3, worker, 30.0, key)


async def _wait_for_rescue(conn: asyncpg.Connection) -> maintenance.RescueResult:
    """The server ends a terminated session's backend a moment later."""
    for _ in range(200):
        result = await _rescue(conn)
        if result.requeued or result.failed:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("the dead worker's lock never came free")


async def test_the_claim_is_refused_while_the_lock_is_free_or_a_rescuer_holds_it(
    pg_dsn: str, conn: asyncpg.Connection, holder: asyncpg.Connection
) -> None:
    key = await workers.next_lock_key(conn)
    worker = await _worker(conn, key)
    await enqueue_many(conn, [NewJob("t")])
    with pytest.raises(LivenessLost):  # nobody holds it yet
        await claims.claim_jobs(conn, ["default"], 1, worker, 30.0, key)

    rescuer = await connect(pg_dsn)
    try:
        async with rescuer.transaction():
            assert await rescuer.fetchval("SELECT jobqueue_liveness_free($1)", key)
            with pytest.raises(LivenessLost):  # a rescuer is taking its jobs
                await claims.claim_jobs(conn, ["default"], 1, worker, 30.0, key)
    finally:
        await rescuer.close()

    await workers.hold_liveness(holder, key)
    assert len(await claims.claim_jobs(conn, ["default"], 1, worker, 30.0, key)) == 1
    assert await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'pending'") == 0


async def test_a_rescuer_waits_for_a_claim_that_holds_the_lock(
    pg_dsn: str, conn: asyncpg.Connection, holder: asyncpg.Connection
) -> None:
    """The claim holds the lock too until it commits, so a rescue never misses what the dead
    worker claimed last: here the claim is still open when its worker's session ends."""
    key = await workers.next_lock_key(conn)
    await workers.hold_liveness(holder, key)
    worker = await _worker(conn, key)
    await enqueue_many(conn, [NewJob("t") for _ in range(2)])
    claimer = await connect(pg_dsn)
    try:
        async with claimer.transaction():
            assert len(await claims.claim_jobs(claimer, ["default"], 2, worker, 30.0, key)) == 2
            holder.terminate()
            await asyncio.sleep(0.5)
            assert await _rescue(conn) == maintenance.RescueResult(0, 0)  # the claim holds it
        assert await _wait_for_rescue(conn) == maintenance.RescueResult(2, 0)
    finally:
        await claimer.close()


async def test_workers_without_a_lock_key_are_left_to_the_lease_rule(
    conn: asyncpg.Connection,
) -> None:
    """The previous release registers no lock key: its jobs wait for their lease."""
    worker = await _worker(conn, None)
    await enqueue_many(conn, [NewJob("t")])
    assert len(await claims.claim_jobs(conn, ["default"], 1, worker, 30.0)) == 1
    assert await _rescue(conn) == maintenance.RescueResult(0, 0)
    assert await conn.fetchval("SELECT status::text FROM jobs") == "running"


async def test_nothing_is_taken_while_the_server_has_just_started(
    conn: asyncpg.Connection,
) -> None:
    """After a restart every lock is free until its worker reconnects: the settle time, from
    the server's start, keeps rescuers off them."""
    key = await workers.next_lock_key(conn)
    worker = await _worker(conn, key)
    await enqueue_many(conn, [NewJob("t")])
    assert len(await claims.claim_jobs(conn, ["default"], 1, worker, 30.0)) == 1
    up = await conn.fetchval("SELECT extract(epoch FROM now() - pg_postmaster_start_time())")
    settle = float(up) + 3600
    assert await maintenance.rescue_dead_workers(conn, settle_seconds=settle) == (
        maintenance.RescueResult(0, 0)
    )
    assert await _rescue(conn) == maintenance.RescueResult(1, 0)


async def test_a_job_without_tries_left_fails(conn: asyncpg.Connection) -> None:
    key = await workers.next_lock_key(conn)
    worker = await _worker(conn, key)
    await enqueue_many(conn, [NewJob("t", max_tries=1)])
    assert len(await claims.claim_jobs(conn, ["default"], 1, worker, 30.0)) == 1
    assert await _rescue(conn) == maintenance.RescueResult(0, 1)
    row = await conn.fetchrow("SELECT status::text, finished_at FROM jobs")
    assert row["status"] == "failed" and row["finished_at"] is not None


async def test_a_sweep_on_the_lock_holders_own_session_never_takes_its_own_lock(
    conn: asyncpg.Connection, holder: asyncpg.Connection
) -> None:
    """The sweep runs on the LISTEN connection, the session that holds the worker's own lock,
    and a session's own locks never conflict: its own key is left out, or it would take its
    own jobs (and refuse its own claims) every second."""
    key = await workers.next_lock_key(conn)
    await workers.hold_liveness(holder, key)
    worker = await _worker(conn, key)
    await enqueue_many(conn, [NewJob("t")])
    assert len(await claims.claim_jobs(conn, ["default"], 1, worker, 30.0, key)) == 1
    swept = await maintenance.rescue_dead_workers(holder, settle_seconds=0, own_key=key)
    assert swept == maintenance.RescueResult(0, 0)
    assert await conn.fetchval("SELECT status::text FROM jobs") == "running"


class _Confused:
    """Session hooks whose first tick fails with an error that is not an outage, as asyncpg's
    "another operation is in progress" on a connection cut mid-reply."""

    tick_seconds = 0.05

    def __init__(self) -> None:
        self.sessions = 0

    async def opened(self, conn: asyncpg.Connection) -> None:
        self.sessions += 1

    async def tick(self, conn: asyncpg.Connection) -> None:
        if self.sessions == 1:
            raise RuntimeError("confused connection")
        await conn.fetchval("SELECT 1")

    def closed(self) -> None:
        pass


async def test_the_lock_holding_connection_survives_an_error_that_is_not_an_outage(
    pg_dsn: str,
) -> None:
    """The LISTEN connection holds the liveness lock: were it to stop for good, the worker
    would never claim again. Any error ends only the session; a new one follows."""
    hooks = _Confused()
    listener = Listener(pg_dsn, {}, lambda: None, session=hooks, max_backoff=0.1)
    task = asyncio.create_task(listener.run())
    try:
        for _ in range(200):
            if hooks.sessions >= 2 and listener.connected.is_set():
                break
            assert not task.done(), task
            await asyncio.sleep(0.05)
        assert hooks.sessions >= 2 and listener.connected.is_set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_lock_holding_connection_has_the_deadlines_and_outlives_idle_timeouts(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    """The LISTEN connection runs under the worker's statement and idle-in-transaction
    deadlines, as its pool does; but an idle_session_timeout that a role or database sets (here
    shorter than the gap between two sweeps) must not end it: its end frees the lock."""
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f"ALTER DATABASE \"{database}\" SET idle_session_timeout = '300ms'")
    liveness = Liveness(await workers.next_lock_key(conn))
    seen: list[tuple[str, str]] = []

    async def sweep(session: asyncpg.Connection) -> None:
        seen.append(
            (
                await session.fetchval("SHOW statement_timeout"),
                await session.fetchval("SHOW idle_in_transaction_session_timeout"),
            )
        )

    liveness.sweep_with(sweep, 1.0)  # every 0.5 to 1.5 s: idle longer than 300 ms between
    timeouts = DatabaseTimeouts(db_statement_timeout=2)
    kwargs = lock_connect_kwargs(timeouts.connect_kwargs())  # as the worker's waker has them
    listener = Listener(pg_dsn, {}, lambda: None, kwargs, session=liveness, max_backoff=0.1)
    task = asyncio.create_task(listener.run())
    try:
        for _ in range(100):
            if len(seen) >= 4:
                break
            assert not task.done(), task
            await asyncio.sleep(0.1)
        assert len(seen) >= 4, seen
        assert (listener.connections, liveness.acquisitions) == (1, 1)
        assert set(seen) == {("2s", "1min")}
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid::integer = jobqueue_liveness_class() AND objid::integer = $1",
            liveness.key,
        )
        assert held == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_sweep_stuck_past_its_deadline_leaves_the_lock_held(
    pg_dsn: str, conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweep slower than the tick's deadline (PROBE_SECONDS) would end the session, and
    with it the lock: a slow lookup of a dead worker's jobs (a pinned horizon) would then
    stop every live worker's claims and free their jobs. The server ends the sweep's
    statement first; the session and the lock stay. Here the sweep waits on a lock of the
    workers table, held past the tick's deadline."""
    liveness = Liveness(await workers.next_lock_key(conn))
    liveness.sweep_with(lambda session: rescue_dead_once(session, liveness), 0.2)
    kwargs = lock_connect_kwargs(DatabaseTimeouts().connect_kwargs(), bound_seconds=1.0)
    listener = Listener(pg_dsn, {}, lambda: None, kwargs, session=liveness, max_backoff=0.1)
    task = asyncio.create_task(listener.run())
    blocker = await connect(pg_dsn)
    try:
        await asyncio.wait_for(liveness.held.wait(), 30)
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE workers IN ACCESS EXCLUSIVE MODE")
            await asyncio.sleep(PROBE_SECONDS + 2)
        await asyncio.sleep(1)  # sweeps that find the table free again
        assert not task.done(), task
        assert (listener.connections, liveness.acquisitions) == (1, 1)
        assert liveness.held.is_set()
        assert "dead-worker rescue gave up" in caplog.text
    finally:
        blocker.terminate()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
