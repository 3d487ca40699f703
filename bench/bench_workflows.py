"""Workflows against plain jobs, in one run on one throwaway server:

1. drain: N plain no-op jobs (the anchor), a fan-out (one job, then N that depend on it) and a
   fan-in (N jobs, then one that depends on all N), each drained by the same worker process;
   besides the whole drain, the N-wide part alone (first start to last finish of those N jobs)
   and the gap between the parts (for a fan-out, the unblocking and the first claim); and the
   time to enqueue each against the plain jobs' (a ratio above 1 is faster);
2. unblocking: the acknowledgement that unblocks N dependents against a bare UPDATE of the same
   N rows by id (the least any unblocking can write), alternated on the same rows;
3. ack cost: complete_jobs as it is now against its text before workflows, on plain jobs,
   alternated on the same rows, so that a noisy machine slows both alike.

    python bench/bench_workflows.py --jobs 10000
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import contenders
from bench.common import SQL as ANCHORS
from bench.common import (
    fresh_database,
    join_children,
    machine_note,
    options,
    print_table,
    ratio,
    server,
    start_children,
    wait_drained,
)
from worker.db import claims, sql_files
from worker.db.jobs import NewJob, enqueue_many
from worker.db.sql_files import parse_named_statements
from worker.db.workflows import WorkflowItem, enqueue_batch, enqueue_job

SQL = parse_named_statements((Path(__file__).parent / "sql" / "workflows.sql").read_text())
COMPLETE_NOW = sql_files.query("claims", "complete_jobs")


async def fill_plain(conn: asyncpg.Connection, count: int) -> list[int]:
    ids: list[int] = []
    for start in range(0, count, 10_000):
        pairs = await enqueue_many(conn, [NewJob("noop")] * min(10_000, count - start))
        ids += [job.id for job, _ in pairs]
    return ids


async def fill_fan_out(conn: asyncpg.Connection, count: int) -> None:
    (root,) = await fill_plain(conn, 1)
    async with conn.transaction():
        await enqueue_batch(conn, [WorkflowItem(NewJob("noop"), [root]) for _ in range(count)])


async def fill_fan_in(conn: asyncpg.Connection, count: int) -> None:
    ids = await fill_plain(conn, count)
    await enqueue_job(conn, NewJob("noop"), depends_on=ids)


FILLS = {
    "plain": lambda conn, n: fill_plain(conn, n + 1),
    "fan-out 1 -> N": fill_fan_out,
    "fan-in N -> 1": fill_fan_in,
}


@dataclass
class Drain:
    seconds: float  # the whole drain, as the worker process saw it
    wide: float  # first start to last finish of the N-wide part, from the rows
    gap: float  # from the other part's edge to the wide part's (see the docstring)
    enqueue: float  # the fill: N + 1 jobs enqueued, their dependencies included


def phases(name: str, rows: list[asyncpg.Record]) -> tuple[float, float]:
    """(wide, gap) seconds from the rows' timestamps, the root or the final job set apart."""
    if name == "plain":
        wide, gap = rows, 0.0
    elif name.startswith("fan-out"):  # the root is the first row
        wide = rows[1:]
        gap = (min(r["started_at"] for r in wide) - rows[0]["finished_at"]).total_seconds()
    else:  # fan-in: the final job is the last row
        wide = rows[:-1]
        gap = (rows[-1]["started_at"] - max(r["finished_at"] for r in wide)).total_seconds()
    first = min(r["started_at"] for r in wide)
    return (max(r["finished_at"] for r in wide) - first).total_seconds(), gap


async def drain(srv: object, name: str, count: int, slots: int) -> Drain:
    dsn = await fresh_database(srv, "bench_flows", migrated=True)
    conn = await asyncpg.connect(dsn)
    try:
        filling = time.perf_counter()
        await FILLS[name](conn, count)
        enqueue = time.perf_counter() - filling
        await conn.execute(ANCHORS["vacuum"])
    finally:
        await conn.close()
    procs, go, stop = start_children(contenders.ours, lambda _i: (dsn, slots, 500), 1)
    started = time.monotonic()
    go.set()
    try:
        finished = await wait_drained(dsn, SQL["jobs_unfinished"], procs=procs)
    finally:
        join_children(procs, stop)
    seconds = finished - started
    conn = await asyncpg.connect(dsn)
    try:
        wide, gap = phases(name, await conn.fetch(SQL["jobs_times"]))
    finally:
        await conn.close()
    print(
        f"  {name}: {(count + 1) / seconds:,.0f} jobs/s ({seconds:.2f}s);"
        f" the {count:,} alone {wide:.2f}s, gap {gap * 1000:.0f} ms; enqueued in {enqueue:.2f}s",
        flush=True,
    )
    return Drain(seconds, wide, gap, enqueue)


async def unblock_cost(srv: object, count: int, rounds: int) -> tuple[float, float]:
    """Median milliseconds to unblock `count` dependents: (the acknowledgement of their one
    dependency, which unblocks them in its statement; a bare UPDATE of the same rows by id)."""
    dsn = await fresh_database(srv, "bench_flows_unblock", migrated=True)
    conn = await asyncpg.connect(dsn)
    try:
        await fill_fan_out(conn, count)
        worker = uuid.uuid4()
        (root,) = await claims.claim_jobs(conn, ["default"], 1, worker, 3600)
        dependents = [row["id"] for row in (await conn.fetch(SQL["jobs_times"]))[1:]]
        token = f'{{"{root.id}:{root.attempts}":null}}'
        timings: dict[str, list[float]] = {"ack": [], "bare": []}
        order = random.Random(15)
        for _ in range(rounds):
            pair = ["ack", "bare"]
            order.shuffle(pair)
            for which in pair:
                await conn.execute(ANCHORS["vacuum"])
                started = time.perf_counter()
                if which == "ack":
                    written = await conn.fetchval(COMPLETE_NOW, [root.id], worker, token)
                    assert written == 1, written
                else:
                    status = await conn.execute(SQL["jobs_unblock_bare"], dependents)
                    assert claims.row_count(status) == count, status
                timings[which].append((time.perf_counter() - started) * 1000)
                left = await conn.fetchval(SQL["jobs_blocked"])
                assert left == 0, left  # every dependent unblocked, by either statement
                await conn.execute(SQL["jobs_reblock"], root.id, dependents)
        return statistics.median(timings["ack"]), statistics.median(timings["bare"])
    finally:
        await conn.close()


async def ack_cost(srv: object, batch: int, rounds: int) -> tuple[float, float]:
    """Median microseconds per acknowledged job: (now, before workflows)."""
    dsn = await fresh_database(srv, "bench_flows_acks", migrated=True)
    conn = await asyncpg.connect(dsn)
    try:
        await fill_plain(conn, batch)
        worker = uuid.uuid4()
        jobs = await claims.claim_jobs(conn, ["default"], batch, worker, 3600)
        ids = [job.id for job in jobs]
        attempts = [job.attempts for job in jobs]
        tokens = "{" + ",".join(f'"{i}:{a}":null' for i, a in zip(ids, attempts, strict=True)) + "}"
        timings: dict[str, list[float]] = {"now": [], "before": []}
        shuffle = random.Random(15).shuffle
        sequence: list[str] = []
        for _ in range(rounds):
            pair = ["now", "before"]
            shuffle(pair)  # so neither statement always runs first after a vacuum
            sequence += pair
        for index, which in enumerate(sequence):
            started = time.perf_counter()
            if which == "now":  # the same inputs as below: only the statements differ
                written = await conn.fetchval(COMPLETE_NOW, ids, worker, tokens)
            else:
                status = await conn.execute(SQL["complete_jobs_before"], ids, worker, tokens)
                written = claims.row_count(status)
            timings[which].append((time.perf_counter() - started) / len(ids) * 1e6)
            assert written == len(ids), written
            await conn.execute(SQL["jobs_reset_running"], ids)
            if index % 50 == 49:
                await conn.execute(ANCHORS["vacuum"])
        return statistics.median(timings["now"]), statistics.median(timings["before"])
    finally:
        await conn.close()


async def run(count: int, slots: int, rounds: int, ack_rounds: int) -> None:
    names = list(FILLS)
    seconds: dict[str, list[Drain]] = {name: [] for name in names}
    with server() as srv:
        for round_index in range(rounds):
            print(f"round {round_index + 1} of {rounds}", flush=True)
            # a rotated order each round, so no kind always runs first on a fresh server
            for name in names[round_index % 3 :] + names[: round_index % 3]:
                seconds[name].append(await drain(srv, name, count, slots))
        unblock, bare = await unblock_cost(srv, count, max(3, rounds))
        now, before = await ack_cost(srv, 500, ack_rounds)
    rows: list[tuple[str, ...]] = [
        (
            "jobs",
            "jobs/s (median)",
            "vs plain, same round",
            f"the {count:,} alone",
            "gap (median)",
            "enqueue vs plain",
        )
    ]
    for name in names:
        pairs = list(zip(seconds["plain"], seconds[name], strict=True))
        whole = statistics.median(plain.seconds / own.seconds for plain, own in pairs)
        wide = statistics.median(plain.wide / own.wide for plain, own in pairs)
        enqueue = statistics.median(plain.enqueue / own.enqueue for plain, own in pairs)
        rows.append(
            (
                name,
                f"{(count + 1) / statistics.median(d.seconds for d in seconds[name]):,.0f}",
                f"{whole:.2f}x",
                f"{wide:.2f}x",
                f"{statistics.median(d.gap for d in seconds[name]) * 1000:.0f} ms",
                f"{enqueue:.2f}x",
            )
        )
    title = f"Drain of {count + 1:,} no-op jobs, one worker (MAX_CONCURRENT_JOBS={slots})"
    print_table(f"{title}, {rounds} rounds", rows)
    print(
        f"\n  ack cost on plain jobs, median of {ack_rounds} batches of 500:"
        f" {now:.2f} us/job now, {before:.2f} us/job before workflows"
        f" ({ratio(now, before)} of before)"
    )
    print(
        f"  unblocking {count:,} dependents, median of {max(3, rounds)}: {unblock:.1f} ms in the"
        f" acknowledgement of their dependency, {bare:.1f} ms for a bare UPDATE of the same rows"
        f" ({ratio(unblock, bare)} of the bare UPDATE; {unblock * 1000 / count:.1f} us/dependent)"
    )
    print("  goal: fan-out and fan-in at the speed of plain jobs; plain acks at ~1.00x")
    print(f"  machine: {machine_note()}")


def main() -> None:
    args = options(
        __doc__,
        jobs=(10_000, "N, the fan-out and fan-in width"),
        slots=200,
        rounds=(3, "drain rounds (medians count)"),
        ack_rounds=(200, "ack batches per statement"),
    )
    asyncio.run(run(args.jobs, args.slots, args.rounds, args.ack_rounds))


if __name__ == "__main__":
    main()
