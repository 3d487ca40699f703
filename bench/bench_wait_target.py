"""Benchmark of the wait-time target against the fixed jobs-per-replica ratio, on the L4
control plane with real worker processes (bench/l4_pools.py).

    .venv/bin/python -m bench.bench_wait_target                    # 1,000 x 50 ms, 200 x 2 s
    .venv/bin/python -m bench.bench_wait_target --short 200 --long 40   # a quick check

Two bursts, each from zero replicas, each under two settings of one Deployment:
- "ratio": jobs-per-replica 100 alone, a ratio that suits the 50 ms jobs;
- "ratio + wait": the same ratio and jobqueue.dev/target-wait-seconds 10.
A fixed ratio counts jobs, not work: it gives 200 two-second jobs the same 2 replicas as 200
jobs of 50 ms. The wait target measures the completion rate per replica from the jobs that
finished and adds the replicas the backlog needs to drain within the target. Printed: time to
drain and peak replicas (and the rest of the burst's figures), with "ratio" as the anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench import common
from bench import l4_pools as pools
from controller import annotations as ann

RATIO = "100"
TARGET_WAIT = "10"


def _settings() -> dict[str, dict[str, str]]:
    base = {ann.JOBS_PER_REPLICA: RATIO, ann.SCALE_DOWN_DELAY: "5"}
    return {"ratio": base, "ratio + wait": {**base, ann.TARGET_WAIT_SECONDS: TARGET_WAIT}}


async def main(args: argparse.Namespace) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-wait-"))
    workloads = {
        f"{args.short} x 50 ms": [0.05] * args.short,
        f"{args.long} x 2 s": [2.0] * args.long,
    }
    with pools.control_plane() as plane:
        async with pools.stack(plane, log_dir) as built:
            fast = {"JOBQUEUE_CONTROLLER_INTERVAL": "0.5"}
            with pools.our_controller(plane, built.dsn, log_dir, **fast):
                for index, (workload, durations) in enumerate(workloads.items()):
                    results = []
                    for setting, annotations in _settings().items():
                        name = f"w{index}-{'wait' if 'wait' in setting else 'ratio'}"
                        spec = pools.PoolSpec(
                            name, name, max_replicas=args.max_replicas, annotations=annotations
                        )
                        runner = built.add_pool(spec)
                        burst = await pools.run_burst(built, spec, runner, durations)
                        results.append((setting, burst))
                    title = f"{workload}, 5 slots per replica, max {args.max_replicas} replicas"
                    common.print_table(title, pools.burst_rows(results, anchor=results[0][1]))
    print(f"\n{common.machine_note()}; logs in {log_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=1000, help="jobs of 50 ms")
    parser.add_argument("--long", type=int, default=200, help="jobs of 2 s")
    parser.add_argument("--max-replicas", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
