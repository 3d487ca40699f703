"""KEDA side by side with our controller, on the L4 control plane with real worker processes.

    bash tools/build-tools.sh --keda                       # KEDA's operator and adapter, once
    .venv/bin/python -m bench.bench_vs_keda                # 2,000 jobs of 0.5 s
    .venv/bin/python -m bench.bench_vs_keda --jobs 200 --job-seconds 0.2 --keda fastest  # quick

Three identical worker Deployments (5 job slots each, at most 10 replicas), each given the same
burst from zero, one after the other:
- "ours": scaled by `jobqueue controller` at its defaults (10 jobs per replica, 60 s delay);
- "KEDA default": a ScaledObject with the postgresql trigger on the query KEDA's docs suggest
  (ceil(count / 10), target 1), at KEDA's defaults (30 s polling, 300 s cooldown, the HPA's
  default behaviour);
- "KEDA fastest": the same at KEDA's fastest documented settings (1 s polling, 1 s cooldown,
  no stabilization window, scale-up and -down policies of one second).
The HPA's own sync period is kube-controller-manager's (15 s by default), a cluster setting
that no ScaledObject changes, so it stays at its default for both KEDA runs.

Printed for each: time to the first scale-up, to the first job started, peak replicas, time
to drain and back to zero, replica-seconds, jobs running on a pod when it was deleted, and the
database connections the scaler held; ratios against "ours".
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench import common
from bench import keda_stack as keda
from bench import l4_pools as pools
from controller import annotations as ann

JOBS_PER_REPLICA = 10
MAX_REPLICAS = 10


async def main(args: argparse.Namespace) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-keda-"))
    durations = [args.job_seconds] * args.jobs
    results: list[tuple[str, pools.Burst]] = []
    with pools.control_plane(aggregation=True, extra=keda.BINARIES) as plane:
        async with pools.stack(plane, log_dir) as built:
            with pools.our_controller(plane, built.dsn, log_dir), keda.keda(plane, log_dir):
                ours = pools.PoolSpec(
                    "ours",
                    "ours",
                    max_replicas=MAX_REPLICAS,
                    annotations={ann.JOBS_PER_REPLICA: str(JOBS_PER_REPLICA)},
                )
                runner = built.add_pool(ours)
                results.append(("ours", await pools.run_burst(built, ours, runner, durations)))
                for label, fastest in (("KEDA default", False), ("KEDA fastest", True)):
                    if ("fastest" if fastest else "default") not in args.keda:
                        continue
                    name = "keda-fastest" if fastest else "keda-default"
                    spec = pools.PoolSpec(name, name, max_replicas=MAX_REPLICAS, ours=False)
                    runner = built.add_pool(spec)
                    scaled = keda.scaled_object(
                        name, name, MAX_REPLICAS, JOBS_PER_REPLICA, fastest=fastest
                    )
                    plane.apply(scaled, pools.NAMESPACE)
                    # the HPA KEDA creates starts at one replica: the burst starts from zero
                    await pools.settle_at_zero(built, spec, runner)
                    try:
                        burst = await pools.run_burst(built, spec, runner, durations)
                    finally:
                        plane.kubectl("delete", "scaledobject", name, "-n", pools.NAMESPACE)
                    results.append((label, burst))
    title = (
        f"{args.jobs} jobs of {args.job_seconds:g} s, 5 slots per replica, at most "
        f"{MAX_REPLICAS} replicas; KEDA {keda.keda_version()}; ratios against ours"
    )
    common.print_table(title, pools.burst_rows(results, anchor=results[0][1]))
    print(f"\n{common.machine_note()}; logs in {log_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--job-seconds", type=float, default=0.5)
    parser.add_argument(
        "--keda",
        type=lambda text: set(text.split(",")),
        default={"default", "fastest"},
        help="the KEDA settings to run: default,fastest (default: both)",
    )
    asyncio.run(main(parser.parse_args()))
