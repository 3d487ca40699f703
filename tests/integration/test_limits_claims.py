"""Concurrency and rate limits inside the claim, against real PostgreSQL: per queue, per key,
a hot key beside a cold one, limited queues beside free ones, and racing claimers."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import asyncpg

from tests.integration.limits_support import add_jobs, new_worker, running_counts, set_limits
from tests.integration.queue_support import complete_claimed, eventually, running_worker
from worker.db import claims
from worker.db.connection import connect
from worker.handlers.base import HandlerRegistry, JobContext


async def test_a_queue_limit_caps_its_running_jobs_across_claims(
    conn: asyncpg.Connection,
) -> None:
    await set_limits(conn, "default", concurrency=3)
    await add_jobs(conn, "default", [None] * 10)
    worker = await new_worker(conn)
    first = await claims.claim_jobs(conn, ["default"], 10, worker, 30)
    assert len(first) == 3
    assert await claims.claim_jobs(conn, ["default"], 10, worker, 30) == []
    await complete_claimed(conn, worker, first[:2], "null")
    second = await claims.claim_jobs(conn, ["default"], 10, worker, 30)
    assert len(second) == 2
    assert [j.id for j in first + second] == sorted(j.id for j in first + second)  # claim order


async def test_a_lowered_limit_admits_nothing_until_running_jobs_fall_below_it(
    conn: asyncpg.Connection,
) -> None:
    await add_jobs(conn, "default", [None] * 6)
    worker = await new_worker(conn)
    running = await claims.claim_jobs(conn, ["default"], 4, worker, 30)
    await set_limits(conn, "default", concurrency=2)
    assert await claims.claim_jobs(conn, ["default"], 4, worker, 30) == []
    await complete_claimed(conn, worker, running[:3], "null")
    assert len(await claims.claim_jobs(conn, ["default"], 4, worker, 30)) == 1


async def test_a_key_limit_caps_each_key_and_jobs_without_a_key_pass(
    conn: asyncpg.Connection,
) -> None:
    await set_limits(conn, "default", key_concurrency=2)
    await add_jobs(conn, "default", ["a"] * 5 + ["b"] * 5 + [None] * 3)
    worker = await new_worker(conn)
    batch = await claims.claim_jobs(conn, ["default"], 100, worker, 30)
    _, per_key = await running_counts(conn)
    assert per_key == {("default", "a"): 2, ("default", "b"): 2}
    assert len(batch) == 7  # 2 + 2 + the 3 without a key
    assert await claims.claim_jobs(conn, ["default"], 100, worker, 30) == []


async def test_a_key_limit_holds_at_the_edge_of_its_no_counting_path(
    conn: asyncpg.Connection,
) -> None:
    """A claim skips per-key counting only while the key limit exceeds the queue's running
    jobs plus its room; at the edge it counts again."""
    await set_limits(conn, "default", key_concurrency=3)
    await add_jobs(conn, "default", ["a"] * 10)
    worker = await new_worker(conn)
    assert len(await claims.claim_jobs(conn, ["default"], 3, worker, 30)) == 3  # 3 >= 0 + 3
    assert await claims.claim_jobs(conn, ["default"], 1, worker, 30) == []  # 3 < 3 + 1
    assert await claims.claim_jobs(conn, ["default"], 5, worker, 30) == []


async def test_queue_and_key_limits_together(conn: asyncpg.Connection) -> None:
    await set_limits(conn, "default", concurrency=5, key_concurrency=2)
    await add_jobs(conn, "default", ["a", "b", "c"] * 4)
    worker = await new_worker(conn)
    batch = await claims.claim_jobs(conn, ["default"], 100, worker, 30)
    per_queue, per_key = await running_counts(conn)
    assert len(batch) == 5 and per_queue == {"default": 5}
    assert max(per_key.values()) <= 2


async def test_a_hot_key_does_not_delay_another_keys_job(conn: asyncpg.Connection) -> None:
    """10k jobs of one tenant ahead of a single job of another: the single job is in the very
    first claim after it is enqueued, and so is every later one while the hot key is full."""
    await set_limits(conn, "default", key_concurrency=2)
    await add_jobs(conn, "default", ["hot"] * 10_000)
    (cold,) = await add_jobs(conn, "default", ["cold"])
    await conn.execute("ANALYZE jobs")
    worker = await new_worker(conn)
    batch = await claims.claim_jobs(conn, ["default"], 10, worker, 30)
    assert cold in {j.id for j in batch}
    assert len(batch) == 3
    (later,) = await add_jobs(conn, "default", ["cold"], priority=-5)  # behind the hot backlog
    assert [j.id for j in await claims.claim_jobs(conn, ["default"], 10, worker, 30)] == [later]


async def test_a_full_limited_queue_leaves_the_batch_to_the_others(
    conn: asyncpg.Connection,
) -> None:
    await set_limits(conn, "limited", concurrency=1)
    await add_jobs(conn, "limited", [None] * 5, priority=10)
    await add_jobs(conn, "free", [None] * 5)
    worker = await new_worker(conn, ["limited", "free"])
    batch = await claims.claim_jobs(conn, ["limited", "free"], 4, worker, 30)
    assert [j.queue_name for j in batch] == ["limited", "free", "free", "free"]
    batch = await claims.claim_jobs(conn, ["limited", "free"], 4, worker, 30)
    assert [j.queue_name for j in batch] == ["free", "free"]


async def test_limited_queues_share_the_batch_fairly(conn: asyncpg.Connection) -> None:
    """The first name never starves the others: each limited queue gets its share of the batch,
    counted among the queues that have ready jobs."""
    for queue in ("a", "b"):
        await set_limits(conn, queue, concurrency=100)
        await add_jobs(conn, queue, [None] * 20)
    await add_jobs(conn, "c", [None] * 20)
    worker = await new_worker(conn, ["a", "b", "c", "empty"])
    batch = await claims.claim_jobs(conn, ["a", "b", "c", "empty"], 9, worker, 30)
    assert sorted(j.queue_name for j in batch) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    batch = await claims.claim_jobs(conn, ["a", "b"], 9, worker, 30)
    assert sorted(j.queue_name for j in batch) == ["a"] * 5 + ["b"] * 4
    # with no other queue ready, a limited queue may take the whole batch
    batch = await claims.claim_jobs(conn, ["b", "empty"], 9, worker, 30)
    assert [j.queue_name for j in batch] == ["b"] * 9


async def test_a_rate_limit_admits_n_starts_per_sliding_period(
    conn: asyncpg.Connection,
) -> None:
    await set_limits(conn, "default", rate=(3, 1.0))
    await add_jobs(conn, "default", [None] * 10)
    worker = await new_worker(conn)
    assert len(await claims.claim_jobs(conn, ["default"], 2, worker, 30)) == 2
    assert len(await claims.claim_jobs(conn, ["default"], 5, worker, 30)) == 1
    assert await claims.claim_jobs(conn, ["default"], 5, worker, 30) == []

    async def admitted() -> list[claims.ClaimedJob]:
        return await claims.claim_jobs(conn, ["default"], 5, worker, 30)

    assert len(await eventually(admitted, what="the window to move on")) <= 3
    window = await conn.fetchrow("SELECT * FROM queue_rate_windows WHERE queue_name = 'default'")
    # pairs older than the period are dropped on every write
    assert 1 <= len(window["start_times"]) <= 3


async def test_a_queue_without_limits_never_calls_the_limited_claim(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute("SET track_functions = 'all'")
    await add_jobs(conn, "default", [None] * 3)
    await add_jobs(conn, "limited", [None] * 3)
    await set_limits(conn, "limited", concurrency=1)
    await set_limits(conn, "paused_only")  # a row without limits counts as none
    worker = await new_worker(conn)

    async def calls() -> int:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
                " WHERE funcname = 'jobqueue_claim_limited'"
            )
        )

    async with conn.transaction():
        assert len(await claims.claim_jobs(conn, ["default", "paused_only"], 5, worker, 30)) == 3
        assert await calls() == 0
        assert len(await claims.claim_jobs(conn, ["limited"], 5, worker, 30)) == 1
        assert await calls() == 1


async def test_racing_claimers_never_exceed_the_limits(pg_dsn: str) -> None:
    """Eight connections claim and complete at random while a ninth samples the running
    counts; the limits hold in every sample."""
    setup = await connect(pg_dsn)
    conns = [await connect(pg_dsn) for _ in range(8)]
    try:
        await set_limits(setup, "default", concurrency=6, key_concurrency=2)
        await add_jobs(setup, "default", [f"k{i % 4}" if i % 5 else None for i in range(600)])
        worker = await new_worker(setup)
        done = asyncio.Event()
        seen: list[tuple[dict[str, int], dict[tuple[str, str], int]]] = []

        async def claimer(c: asyncpg.Connection, seed: int) -> int:
            rng = random.Random(seed)
            finished = 0
            while not done.is_set():
                batch = await claims.claim_jobs(c, ["default"], rng.randint(1, 4), worker, 30)
                if not batch and not await c.fetchval(
                    "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"
                ):
                    done.set()
                await asyncio.sleep(rng.random() / 200)
                finished += await complete_claimed(c, worker, batch, "null")
            return finished

        async def sampler() -> None:
            while not done.is_set():
                seen.append(await running_counts(setup))

        results = await asyncio.wait_for(
            asyncio.gather(sampler(), *(claimer(c, i) for i, c in enumerate(conns))), 300
        )
        assert sum(results[1:]) == 600
        assert seen
        assert max(per_queue.get("default", 0) for per_queue, _ in seen) <= 6
        assert max((n for _, per_key in seen for n in per_key.values()), default=0) <= 2
    finally:
        for c in [setup, *conns]:
            await c.close()


async def test_a_worker_claims_again_when_its_limited_job_ends(pg_dsn: str) -> None:
    """No notification says a limit has room again; the worker that ran the limited job claims
    at once after its acknowledgement, not at its next poll (30 s here, longer than the
    deadline)."""
    registry = HandlerRegistry()

    @registry.register("quick")
    async def quick(payload: dict[str, Any], ctx: JobContext) -> Any:
        return None

    setup = await connect(pg_dsn)
    try:
        await set_limits(setup, "default", concurrency=1)
        await add_jobs(setup, "default", [None] * 4, job_type="quick")
        async with running_worker(pg_dsn, registry, poll_interval=30.0):

            async def all_done() -> bool:
                return (
                    await setup.fetchval("SELECT count(*) FROM jobs WHERE status = 'completed'")
                    == 4
                )

            await eventually(all_done, within=25, what="four limited jobs, one at a time")
        starts = await setup.fetch("SELECT started_at, finished_at FROM jobs ORDER BY started_at")
        for before, after in itertools.pairwise(starts):
            assert after["started_at"] >= before["finished_at"]  # one at a time
    finally:
        await setup.close()
