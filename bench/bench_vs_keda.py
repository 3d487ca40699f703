"""KEDA side by side with our controller, on the L4 control plane with real worker processes,
over many bursts each, so that the first job's start is a distribution, not one run.

    bash tools/build-tools.sh --keda                   # KEDA's operator and adapter, once
    flock /work/locks/heavy.lock .venv/bin/python -m bench.bench_vs_keda --bursts 10
    .venv/bin/python -m bench.bench_vs_keda --bursts 2 --jobs 200 --job-seconds 0.2  # quick

Identical worker Deployments (5 job slots each, at most 10 replicas), each given the same
burst from zero, in turn, round after round (so a change in the machine's load falls on all):
- "ours": scaled by `jobqueue controller` at its defaults (10 jobs per replica, 60 s delay);
- "ours fastest": the same with `jobqueue.dev/scale-down-delay: "1"`, like for like with KEDA
  at its fastest (whose cooldown is 1 s and which has no stabilization window);
- "KEDA default": a ScaledObject with the postgresql trigger on the query KEDA's docs suggest
  (ceil(count / 10), target 1), at KEDA's defaults (30 s polling, 300 s cooldown, the HPA's
  default behaviour);
- "KEDA fastest": the same at KEDA's fastest documented settings (1 s polling, 1 s cooldown,
  no stabilization window, scale-up and -down policies of one second).
The HPA's own sync period is kube-controller-manager's (15 s by default), a cluster setting
that no ScaledObject changes, so it stays at its default for both KEDA runs.

Printed: the first job's start (p50, p95, max over the bursts), the medians of the time to the
first scale-up, to drain and back to zero (and back to zero after the last job), of the
replica-seconds and peak replicas; the jobs that were running on a pod when it was deleted;
where the seconds to the first job went (bench/burst_timeline.py); ratios of ours over each
KEDA setting (ours against KEDA default, ours and ours fastest against KEDA fastest); and,
last, `first job p50 ours X s, keda-fastest Y s, ratio Z` (ours at its defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from bench import bursts_report as report
from bench import common
from bench import l4_pools as pools
from controller import annotations as ann
from tests.fixtures import keda

JOBS_PER_REPLICA = 10
MAX_REPLICAS = 10
NAMES = {"default": ("KEDA default", "keda-default"), "fastest": ("KEDA fastest", "keda-fastest")}
OURS, OURS_FASTEST = "ours", "ours fastest"
PAIRS = [
    (OURS, NAMES["default"][0]),
    (OURS, NAMES["fastest"][0]),
    (OURS_FASTEST, NAMES["fastest"][0]),
]


async def main(args: argparse.Namespace) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-keda-"))
    durations = [args.job_seconds] * args.jobs
    settings = [s for s in ("default", "fastest") if s in args.keda]
    print(f"start: {common.machine_note()}", flush=True)
    binaries = keda.BINARIES if settings else ()
    with pools.control_plane(aggregation=bool(settings), extra=binaries) as plane:
        async with pools.stack(plane, log_dir) as built:
            with pools.our_controller(plane, built.dsn, log_dir) as port:
                built.controller_port = port
                with keda.keda(plane, log_dir) if settings else contextlib.nullcontext():
                    results = await _rounds(args, plane, built, settings, durations)
    named = [(label, results[label]) for label in results]
    title = (
        f"{args.bursts} bursts each of {args.jobs} jobs of {args.job_seconds:g} s, 5 slots per "
        f"replica, at most {MAX_REPLICAS} replicas; KEDA {keda.keda_version()}"
    )
    common.print_table(title, report.summary_rows(named, PAIRS))
    common.print_table("Where the seconds to the first job went", report.timeline_rows(named))
    print(f"\nend: {common.machine_note()}; logs in {log_dir}")
    print(report.last_line(named, OURS, NAMES["fastest"][0]))


async def _rounds(
    args: argparse.Namespace,
    plane: pools.ControlPlane,
    built: pools.Stack,
    settings: list[str],
    durations: list[float],
) -> dict[str, list[pools.Burst]]:
    ratio = {ann.JOBS_PER_REPLICA: str(JOBS_PER_REPLICA)}
    contenders = []
    for label, name, extra in (
        (OURS, "ours", {}),
        (OURS_FASTEST, "ours-fastest", {ann.SCALE_DOWN_DELAY: "1"}),
    ):
        if label == OURS_FASTEST and not args.ours_fastest:
            continue
        spec = pools.PoolSpec(name, name, max_replicas=MAX_REPLICAS, annotations={**ratio, **extra})
        contenders.append((label, spec, built.add_pool(spec)))
    for setting in settings:
        label, name = NAMES[setting]
        spec = pools.PoolSpec(name, name, max_replicas=MAX_REPLICAS, ours=False)
        runner = built.add_pool(spec)
        scaled = keda.scaled_object(
            name, name, MAX_REPLICAS, JOBS_PER_REPLICA, fastest=setting == "fastest"
        )
        plane.apply(scaled, pools.NAMESPACE)
        contenders.append((label, spec, runner))
    results: dict[str, list[pools.Burst]] = {label: [] for label, _, _ in contenders}
    for round_number in range(1, args.bursts + 1):
        for label, spec, runner in contenders:
            # KEDA's HPA starts at one replica: every burst starts from zero and quiet
            await pools.settle_at_zero(built, spec, runner, within=600)
            burst = await pools.run_burst(built, spec, runner, durations)
            results[label].append(burst)
            load = os.getloadavg()[0]
            print(
                f"round {round_number} {label}: first job {pools.seconds(burst.first_started)}, "
                f"drained {pools.seconds(burst.drained)}, zero {pools.seconds(burst.back_to_zero)}"
                f", {burst.replica_seconds:.0f} replica-s, load {load:.2f}",
                flush=True,
            )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=10, help="bursts for each scaler")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--job-seconds", type=float, default=0.5)
    parser.add_argument(
        "--keda",
        type=lambda text: {part for part in text.split(",") if part},
        default={"default", "fastest"},
        help="the KEDA settings to run: default,fastest (default: both; '' for ours alone)",
    )
    parser.add_argument(
        "--no-ours-fastest", dest="ours_fastest", action="store_false",
        help="leave out ours with a 1 s scale-down delay",
    )  # fmt: skip
    asyncio.run(main(parser.parse_args()))
