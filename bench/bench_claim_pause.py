"""What the paused-queue check costs the claim: claim_jobs as it is, against the same statement
with the check's line taken out (the claim before pause existed), run alternately on one
connection over the same pending jobs, each claim rolled back so both see the same rows.
A drain on a busy machine is too noisy to show a difference this small; this isolates it.

    python bench/bench_claim_pause.py --claims 2000 --queues 1 --batch 100
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SQL, fresh_database, machine_note, options, print_table, server
from worker.db import sql_files
from worker.db.jobs import NewJob, enqueue_many

PAUSE_CHECK = "    WHERE s.paused IS NOT TRUE\n"


async def time_claims(conn: asyncpg.Connection, sql: str, args: tuple[object, ...]) -> float:
    tr = conn.transaction()
    await tr.start()
    started = time.perf_counter()
    await conn.fetch(sql, *args)
    elapsed = time.perf_counter() - started
    await tr.rollback()
    return elapsed


async def run(claims: int, queues: int, batch: int, configured: bool) -> None:
    with_check = sql_files.query("claims", "claim_jobs")
    if PAUSE_CHECK not in with_check:
        raise SystemExit("claim_jobs no longer holds the pause check this bench removes")
    without = with_check.replace(PAUSE_CHECK, "")
    names = [f"q{i}" for i in range(queues)]
    with server() as srv:
        dsn = await fresh_database(srv, "bench_claim_pause", migrated=True)
        conn = await asyncpg.connect(dsn)
        try:
            for name in names:
                await enqueue_many(conn, [NewJob("noop", queue_name=name)] * 5000)
            if configured:  # rows that exist but are not paused: the probe finds them
                await conn.execute(SQL["queues_rows"], names)
            await conn.execute(SQL["vacuum"])
            args = (names, batch, uuid.uuid4(), 30.0, None)
            samples: dict[str, list[float]] = {"with": [], "without": []}
            for _ in range(50):  # warm both plans and caches
                await time_claims(conn, with_check, args)
                await time_claims(conn, without, args)
            for i in range(claims):
                order = (("with", with_check), ("without", without))
                for label, sql in order if i % 2 else order[::-1]:
                    samples[label].append(await time_claims(conn, sql, args))
        finally:
            await conn.close()
    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    rows = [("claim_jobs", "median µs", "p90 µs")]
    for label in ("without", "with"):
        p90 = statistics.quantiles(samples[label], n=10)[-1] * 1e6
        rows.append((f"{label} the pause check", f"{med[label]:.0f}", f"{p90:.0f}"))
    what = "queues rows present, not paused" if configured else "no queues rows"
    print_table(f"{claims} claims of {batch} over {queues} queue(s), {what}", rows)
    print(f"\n  with vs without: {med['with'] / med['without']:.3f}x the median claim time")
    print(f"  machine: {machine_note()}")


def main() -> None:
    args = options(
        __doc__,
        claims=(2000, "claims of each kind"),
        queues=(1, "queues the claim serves"),
        batch=(100, "jobs per claim"),
        configured=(False, "give each queue a row"),
    )
    asyncio.run(run(args.claims, args.queues, args.batch, args.configured))


if __name__ == "__main__":
    main()
