"""The ready ring (storage layout 2, migration 0017, docs/storage.md): every way into pending
writes an entry, every way out without a claim removes it, `jobs` stays the truth over a stale
entry, and the turn empties slots with TRUNCATE while keeping the entries that still wait.
The last test runs a real `jobqueue worker` under a pinned horizon: its own service turns the
ring, and the slots that claims emptied are truncated while the pin holds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from tests.fixtures.processes import log_tail, stop_process
from tests.integration.queue_support import eventually, start_worker_process
from worker.db import claims, ready, workers
from worker.db.connection import connect
from worker.db.jobs import NewJob, cancel_job, enqueue_many
from worker.runtime.ring import MOVE_PER_TURN

SLOTS = 8
ENTRIES = "SELECT job_id FROM job_ready ORDER BY job_id"
# each slot's file: TRUNCATE gives it a new one
FILES = """
SELECT pg_relation_filenode(format('job_ready_%s', s)::regclass) FROM generate_series(0, 7) AS s
"""
# the slots with anything on disk (entries, or the dead versions of taken ones)
OCCUPIED_SLOTS = """
SELECT count(*) FROM generate_series(0, 7) AS s
WHERE pg_relation_size(format('job_ready_%s', s)::regclass) > 0
"""


async def _entries(conn: asyncpg.Connection) -> list[int]:
    return [row[0] for row in await conn.fetch(ENTRIES)]


async def _worker(conn: asyncpg.Connection) -> uuid.UUID:
    worker = uuid.uuid4()
    await workers.register_worker(conn, worker, "ring-test", ["default"], 10, 0, 30.0)
    return worker


async def _turn_round(conn: asyncpg.Connection) -> None:
    """A whole ring's worth of turns, each truncating what it can. The turn reads the slots'
    dead and live counts from the statistics, which a backend sends at most once a second:
    here they are sent at once."""
    for _ in range(2 * SLOTS):
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await ready.turn(conn, 0, MOVE_PER_TURN)


async def test_every_way_into_pending_writes_an_entry_and_a_claim_takes_it(
    conn: asyncpg.Connection,
) -> None:
    ((one, _), (two, _)) = await enqueue_many(conn, [NewJob("t"), NewJob("t")])
    three = await conn.fetchval("SELECT jobqueue_enqueue('t', '{}'::jsonb)")
    assert await _entries(conn) == [one.id, two.id, three]

    worker = await _worker(conn)
    claimed = await claims.claim_jobs(conn, ["default"], 10, worker, 30.0)
    assert sorted(job.id for job in claimed) == [one.id, two.id, three]
    assert await _entries(conn) == []

    # a retry goes back to pending (due now), and is claimed again from its new entry
    first = next(job for job in claimed if job.id == one.id)
    assert await claims.fail_jobs(conn, worker, [one.id], [first.attempts], ["boom"], [0.0]) == 1
    assert await _entries(conn) == [one.id]
    again = await claims.claim_jobs(conn, ["default"], 10, worker, 30.0)
    assert [(job.id, job.attempts) for job in again] == [(one.id, 2)]


async def test_a_cancelled_job_leaves_the_ring(conn: asyncpg.Connection) -> None:
    ((job, _),) = await enqueue_many(conn, [NewJob("t")])
    await cancel_job(conn, job.id)
    assert await _entries(conn) == []


async def test_a_job_taken_straight_from_jobs_by_an_older_worker_is_not_claimed_again(
    conn: asyncpg.Connection,
) -> None:
    """A layout-1 worker claims from `jobs` and leaves the entry: the row is the truth."""
    ((job, _),) = await enqueue_many(conn, [NewJob("t")])
    await conn.execute(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, worker_id = $2 WHERE id = $1",
        job.id,
        uuid.uuid4(),
    )
    assert await _entries(conn) == [job.id]  # stale
    assert await claims.claim_jobs(conn, ["default"], 10, await _worker(conn), 30.0) == []
    assert await _entries(conn) == []  # taken with the claim, which found the row running
    assert await conn.fetchval("SELECT attempts FROM jobs WHERE id = $1", job.id) == 1


async def test_a_stale_entry_never_takes_the_jobs_current_entry_with_it(
    conn: asyncpg.Connection,
) -> None:
    """Addresses restart in every truncated slot, so a stale entry in one slot and a job's
    current entry in another can share one. An older release's worker claims J straight from
    `jobs` (its entry stays, stale), J fails with a retry an hour away (a new entry, in the next
    slot, at the same address), and a claim then picks the stale entry: the current one must
    stay, or J would be pending with no entry, never to run."""
    await conn.execute("SELECT setval('job_ready_slot', 9)")  # slot 1
    j = await conn.fetchval("SELECT jobqueue_enqueue('t', '{}', 'q')")  # slot 1, (0,1)
    await conn.fetchval("SELECT jobqueue_enqueue('t', '{}', 'q')")  # slot 1, (0,2)
    await conn.execute(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1 WHERE id = $1", j
    )
    await conn.execute("SELECT setval('job_ready_slot', 10)")  # slot 2
    await conn.execute(
        "UPDATE jobs SET status = 'pending', run_at = now() + interval '1 hour' WHERE id = $1", j
    )  # slot 2, (0,1)
    await conn.fetchval("SELECT jobqueue_enqueue('t', '{}', 'q')")  # slot 2, (0,2)

    claimed = await claims.claim_jobs(conn, ["q"], 10, await _worker(conn), 30.0)
    assert j not in {job.id for job in claimed} and len(claimed) == 2
    assert await _entries(conn) == [j]  # the retry's entry, an hour ahead


async def test_a_claim_skips_a_job_another_transaction_holds_and_keeps_its_entry(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    """An application enqueues a dependent of J in its own transaction, which holds J's row
    (FOR SHARE) until it commits. A claim must not wait for it, as layout 1 did not: it takes
    the other job, and J's entry stays for a later claim. Then the application cancels J in the
    same transaction, which needs the entry's lock: no deadlock, and the entry goes with J."""
    j = await conn.fetchval("SELECT jobqueue_enqueue('t', '{}', 'q')")
    k = await conn.fetchval("SELECT jobqueue_enqueue('t', '{}', 'q')")
    app = await connect(pg_dsn)
    try:
        async with app.transaction():
            await app.fetchval(
                "SELECT jobqueue_enqueue('child', '{}', 'q2', depends_on => ARRAY[$1::bigint])", j
            )
            claimed = await asyncio.wait_for(
                claims.claim_jobs(conn, ["q"], 10, await _worker(conn), 30.0), timeout=20
            )
            assert [job.id for job in claimed] == [k]
            assert await _entries(conn) == [j]
            await app.execute("UPDATE jobs SET status = 'cancelled' WHERE id = $1", j)
    finally:
        await app.close()
    assert await _entries(conn) == []
    assert await conn.fetchval("SELECT status::text FROM jobs WHERE id = $1", j) == "cancelled"


async def test_the_turn_truncates_emptied_slots_and_keeps_entries_that_still_wait(
    conn: asyncpg.Connection,
) -> None:
    """A delayed job's entry sits among entries that claims took, and one whose job was taken
    by an older release's worker straight from `jobs`: the turn moves the first along, drops
    the second, and truncates the slot; then every slot that claims emptied."""
    later = datetime.now(UTC) + timedelta(hours=1)
    # the stale entry is in a queue these claims do not serve, so only the turn can drop it
    ((waiting, _), (stale, _)) = await enqueue_many(
        conn, [NewJob("t", run_at=later), NewJob("t", queue_name="other")]
    )
    await conn.execute("UPDATE jobs SET status = 'running' WHERE id = $1", stale.id)
    worker = await _worker(conn)
    for _ in range(SLOTS + 2):  # write into every slot, and take it all
        await enqueue_many(conn, [NewJob("t") for _ in range(20)])
        assert len(await claims.claim_jobs(conn, ["default"], 50, worker, 30.0)) == 20
        await ready.turn(conn, 0, MOVE_PER_TURN)
    await _turn_round(conn)

    assert await _entries(conn) == [waiting.id]
    assert await conn.fetchval(OCCUPIED_SLOTS) <= 2, await conn.fetch(
        "SELECT s, pg_relation_size(format('job_ready_%s', s)::regclass) "
        "FROM generate_series(0, 7) AS s"
    )
    await conn.execute("UPDATE jobs SET run_at = now() WHERE id = $1", waiting.id)
    assert [job.id for job in await claims.claim_jobs(conn, ["default"], 5, worker, 30.0)] == [
        waiting.id
    ]


async def test_the_turn_drops_the_entries_a_limited_queues_claims_leave(
    conn: asyncpg.Connection,
) -> None:
    """A queue with a limit is claimed from `jobs` by jobqueue_claim_limited, which leaves its
    entries behind; with no pin (so no slot is mostly dead), the turn still drops them."""
    await conn.execute("INSERT INTO queues (name, concurrency_limit) VALUES ('lim', 50)")
    await enqueue_many(conn, [NewJob("t", queue_name="lim") for _ in range(20)])
    worker = await _worker(conn)
    taken = await claims.claim_jobs(conn, ["lim"], 50, worker, 30.0)
    assert len(taken) == 20 and all(job.limited for job in taken)
    ids, attempts = [job.id for job in taken], [job.attempts for job in taken]
    assert await claims.complete_jobs(conn, worker, ids, attempts, ["null"] * 20) == 20
    await _turn_round(conn)
    assert await _entries(conn) == []


# what this backend's statements read from the ring's slots since its statistics were sent
RING_TUPLES_READ = """
SELECT sum(pg_stat_get_xact_tuples_returned(c) + pg_stat_get_xact_tuples_fetched(c))::int
FROM (SELECT format('job_ready_%s', s)::regclass::oid AS c FROM generate_series(0, 7) AS s) AS t
"""


async def test_a_backlog_is_examined_once_a_ring_period_not_at_every_call(
    conn: asyncpg.Connection,
) -> None:
    """Two thousand ready jobs wait in one slot (a burst not yet drained). The turn tidies a
    slot once it is half a ring old, once a ring period; the calls between (every worker's
    service calls once a second) read no more than whether a slot is empty. They used to
    re-examine the whole backlog, a probe of `jobs` per entry, every second."""
    await enqueue_many(conn, [NewJob("t") for _ in range(2000)])
    for _ in range(SLOTS // 2):  # the backlog's slot is half a ring old now, and was tidied
        await ready.turn(conn, 0, MOVE_PER_TURN)
    await conn.execute("SELECT pg_stat_force_next_flush()")  # counters start from zero
    async with conn.transaction():
        assert await ready.turn(conn, 3_600_000, MOVE_PER_TURN) == -1  # it does not turn
        read = await conn.fetchval(RING_TUPLES_READ)
    assert read < 2 * SLOTS, f"a call that did not turn read {read} entries"
    assert len(await _entries(conn)) == 2000


async def test_a_tidy_that_gave_way_to_a_held_entry_is_done_by_the_next_call(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    """Entries an older release's worker left stale sit in a slot; when that slot comes due
    for its tidy, a claim in flight holds one of them, so the tidy gives way (its 50 ms lock
    timeout). The next call, which does not turn the ring, tidies it: the slot does not keep
    its stale entries for another ring period."""
    stale = [job for job, _ in await enqueue_many(conn, [NewJob("t") for _ in range(5)])]
    await conn.execute(
        "UPDATE jobs SET status = 'running' WHERE id = ANY($1)", [job.id for job in stale]
    )
    for _ in range(SLOTS // 2 - 1):  # one turn short of its tidy
        await ready.turn(conn, 0, MOVE_PER_TURN)
    claim = await connect(pg_dsn)
    try:
        async with claim.transaction():
            await claim.execute("SELECT 1 FROM job_ready WHERE job_id = $1 FOR UPDATE", stale[0].id)
            await ready.turn(conn, 0, MOVE_PER_TURN)  # its turn: the tidy gives way
            assert len(await _entries(conn)) == 5
    finally:
        await claim.close()
    await ready.turn(conn, 3_600_000, MOVE_PER_TURN)  # does not turn, tidies
    assert await _entries(conn) == []


async def test_a_slot_held_by_an_open_transaction_does_not_stop_the_others(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    """A transaction that enqueued and works on holds its slot: the turn passes it by and
    truncates the slots after it."""
    worker = await _worker(conn)
    app = await connect(pg_dsn)
    try:
        async with app.transaction():
            await enqueue_many(app, [NewJob("t", queue_name="elsewhere")])  # holds this slot
            await ready.turn(conn, 0, MOVE_PER_TURN)
            await enqueue_many(conn, [NewJob("t") for _ in range(5)])  # the next slot
            await claims.claim_jobs(conn, ["default"], 5, worker, 30.0)
            files = [row[0] for row in await conn.fetch(FILES)]
            await ready.turn(conn, 0, MOVE_PER_TURN)  # both are old now; the first is held
            await ready.turn(conn, 0, MOVE_PER_TURN)
            renewed = [row[0] for row in await conn.fetch(FILES)]
            assert sum(a != b for a, b in zip(files, renewed, strict=True)) == 1
    finally:
        await app.close()


async def test_a_turn_waits_for_a_busy_slot_no_longer_than_its_lock_timeout(
    conn: asyncpg.Connection, pg_dsn: str
) -> None:
    """A claim in flight holds a weak lock on every slot: the turn gives up on the slot at once
    (lock_timeout), blocking nothing, and truncates it at a later call."""
    worker = await _worker(conn)
    await enqueue_many(conn, [NewJob("t") for _ in range(5)])
    await claims.claim_jobs(conn, ["default"], 5, worker, 30.0)
    busy = await connect(pg_dsn)
    try:
        async with busy.transaction():
            await busy.execute("SELECT 1 FROM job_ready LIMIT 1")  # what a claim locks
            # the slot with the taken entries is old now, and held
            assert await ready.turn(conn, 0, MOVE_PER_TURN) == -1
        assert await ready.turn(conn, 0, MOVE_PER_TURN) != -1
    finally:
        await busy.close()


async def test_a_worker_process_truncates_the_slots_its_claims_emptied_under_a_pin(
    conn: asyncpg.Connection, pg_dsn: str, tmp_path: Path
) -> None:
    """The user's entry point: `jobqueue worker`, its `ready ring` service, and a forgotten
    BEGIN elsewhere. Without the service every slot keeps every dead entry while the pin holds
    (vacuum cannot remove them); with it, each slot is truncated in turn while the pin holds,
    and once the work is done only the current slot and the one before it hold anything."""
    files = [row[0] for row in await conn.fetch(FILES)]
    pin = await connect(pg_dsn)
    log = tmp_path / "worker.log"
    proc = None
    try:
        await pin.execute("BEGIN")
        await pin.fetchval("SELECT txid_current()")
        proc = start_worker_process(pg_dsn, log, MAX_CONCURRENT_JOBS="20")
        total = 0
        for _ in range(12):  # a dozen seconds of work, so that the ring turns many times
            await enqueue_many(conn, [NewJob("noop") for _ in range(100)])
            total += 100
            await asyncio.sleep(1)

        async def all_done() -> bool:
            done = await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'completed'")
            return bool(done == total)

        await eventually(all_done, within=60, what=f"the worker to run {total} jobs")

        async def truncated() -> bool:
            return bool(await conn.fetchval(OCCUPIED_SLOTS) <= 2)

        await eventually(truncated, within=30, what="the worker's ring service to truncate")
        now = [row[0] for row in await conn.fetch(FILES)]
        renewed = sum(a != b for a, b in zip(files, now, strict=True))
        assert renewed >= SLOTS - 2, f"only {renewed} of {SLOTS} slots were truncated"
        assert await conn.fetchval("SELECT max(attempts) FROM jobs") == 1
        assert await _entries(conn) == []
    finally:
        await pin.close()
        if proc is not None:
            stop_process(proc)
    assert "Traceback" not in log.read_text(), log_tail(log)
