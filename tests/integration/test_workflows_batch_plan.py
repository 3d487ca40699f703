"""The set-based batch enqueue (batch_plan + two INSERTs) writes what the one-job-at-a-time SQL
function writes, item by item, for random batches: existing dependencies in every status,
refs to earlier items, run_on_failure, and idempotency keys taken before or repeated inside
the batch. Both run from the same state on two copies of one database, so even the ids match.
"""

from __future__ import annotations

import json
import random
import uuid

import asyncpg

from tests.fixtures import postgres as pg
from worker.db.jobs import NewJob, enqueue_many
from worker.db.workflows import WorkflowItem, enqueue_batch

STATUSES = ("pending", "running", "completed", "failed", "cancelled", "blocked")
ROWS = (
    "SELECT id, job_type, payload::text, status::text, dependencies_left, last_error,"
    " finished_at IS NOT NULL AS finished, idempotency_key, batch_id FROM jobs ORDER BY id"
)
EDGES = "SELECT depends_on_id, job_id, run_on_failure FROM job_dependencies ORDER BY 1, 2"


def _random_batch(rng: random.Random, existing: list[int]) -> list[WorkflowItem]:
    items: list[WorkflowItem] = []
    for index in range(rng.randint(1, 25)):
        key = rng.choice([None, None, None, "taken-1", "taken-2", f"k{rng.randint(0, 4)}"])
        job = NewJob("noop", payload={"i": index}, idempotency_key=key)
        items.append(
            WorkflowItem(
                job,
                depends_on=rng.sample(existing, rng.randint(0, min(3, len(existing)))),
                depends_on_items=sorted(rng.sample(range(index), rng.randint(0, min(3, index)))),
                run_on_failure=rng.random() < 0.2,
            )
        )
    return items


async def _seed(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    """Existing jobs in every status, two of them holding the keys the batches may repeat."""
    jobs = [NewJob("seed", idempotency_key=k) for k in ("taken-1", "taken-2")]
    jobs += [NewJob("seed") for _ in range(10)]
    ids = [job.id for job, _ in await enqueue_many(conn, jobs)]
    for job_id in ids:
        await conn.execute(
            "UPDATE jobs SET status = $2::job_status WHERE id = $1", job_id, rng.choice(STATUSES)
        )
    return ids


async def _one_by_one(conn: asyncpg.Connection, items: list[WorkflowItem]) -> None:
    """The batch as the SQL functions enqueue it, one item at a time (the path before)."""
    external = sorted({d for item in items for d in item.depends_on})
    if external:
        await conn.fetchval(
            "SELECT count(*) FROM jobqueue_lock_dependencies($1::bigint[], 'jobs')", external
        )
    ids: list[int] = []
    referenced = {i for item in items for i in item.depends_on_items}
    for index, item in enumerate(items):
        job = item.job
        ids.append(
            await conn.fetchval(
                "SELECT jobqueue_insert_job($1, $2::jsonb, 'default', 0, NULL, NULL, 3, $3,"
                " NULL, $4::bigint[], $5, NULL, $6, NULL)",
                job.job_type,
                json.dumps(job.payload),
                job.idempotency_key,
                [*item.depends_on, *(ids[i] for i in item.depends_on_items)] or None,
                item.run_on_failure,
                index in referenced,
            )
        )


async def test_random_batches_match_the_one_by_one_path(pg_server: pg.PostgresServer) -> None:
    for seed in range(40):
        rng = random.Random(seed)
        names = [f"plan_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        for name in names:
            await pg.create_database(pg_server.dsn(), name, template=pg_server.template)
        conns = [await asyncpg.connect(str(pg_server.dsn(name))) for name in names]
        try:
            existing = []
            for conn in conns:  # the same seed on both copies: the same rows and ids
                existing = await _seed(conn, random.Random(seed))
            items = _random_batch(rng, existing)
            async with conns[0].transaction():
                await _one_by_one(conns[0], items)
            async with conns[1].transaction():
                await enqueue_batch(conns[1], items)
            before, after = [await conn.fetch(ROWS) for conn in conns]
            assert [tuple(r) for r in after] == [tuple(r) for r in before], seed
            edges = [await conn.fetch(EDGES) for conn in conns]
            assert [tuple(r) for r in edges[1]] == [tuple(r) for r in edges[0]], seed
            # whatever waits on a job flags it, so that its end unblocks the waiters
            unflagged = await conns[1].fetchval(
                "SELECT count(*) FROM job_dependencies AS e JOIN jobs AS j"
                " ON j.id = e.depends_on_id WHERE NOT j.has_dependents"
            )
            assert unflagged == 0, seed
        finally:
            for conn in conns:
                await conn.close()
            for name in names:
                await pg.drop_database(pg_server.dsn(), name)


async def test_a_ref_to_an_item_whose_key_is_taken_waits_for_that_job(
    conn: asyncpg.Connection,
) -> None:
    """The item is the job that holds its key, so a later item's ref waits for that job, which
    is flagged and locked like any named dependency (it once stayed blocked for good)."""
    ((holder, _),) = await enqueue_many(conn, [NewJob("seed", idempotency_key="held")])
    async with conn.transaction():
        enqueued = await enqueue_batch(
            conn,
            [
                WorkflowItem(NewJob("again", idempotency_key="held")),
                WorkflowItem(NewJob("after"), depends_on_items=[0]),
            ],
        )
    (first, _, created_first), (second, status, created) = enqueued.jobs
    assert (first, created_first) == (holder.id, False)
    assert (status, created) == ("blocked", True)
    assert await conn.fetchval("SELECT has_dependents FROM jobs WHERE id = $1", holder.id)
    await conn.execute("UPDATE jobs SET status = 'completed' WHERE id = $1", holder.id)
    await conn.fetchval("SELECT jobqueue_jobs_finished($1::bigint[])", [holder.id])
    assert await conn.fetchval("SELECT status::text FROM jobs WHERE id = $1", second) == "pending"


async def test_a_fan_out_of_ten_thousand_takes_as_few_statements_as_one_of_two(
    conn: asyncpg.Connection,
) -> None:
    ((root, _),) = await enqueue_many(conn, [NewJob("root")])
    counts = []
    for width in (2, 2, 10_000):  # the first also loads asyncpg's type introspection
        sent: list[str] = []

        def log(record: asyncpg.connection.LoggedQuery, sent: list[str] = sent) -> None:
            sent.append(record.query)

        conn.add_query_logger(log)
        async with conn.transaction():
            enqueued = await enqueue_batch(
                conn, [WorkflowItem(NewJob("leaf"), [root.id]) for _ in range(width)]
            )
        conn.remove_query_logger(log)
        assert {status for _, status, _ in enqueued.jobs} == {"blocked"}
        ids = [job_id for job_id, _, _ in enqueued.jobs]
        assert ids == sorted(ids) and len(set(ids)) == width
        counts.append(len(sent))
    assert counts[1] == counts[2], counts  # a fixed number, not one per item
    assert await conn.fetchval("SELECT count(*) FROM job_dependencies") == 10_004
