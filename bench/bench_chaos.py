"""The chaos scenario of tests/integration/test_queue_chaos.py, N times, each on a fresh
PostgreSQL of its own: prints the pass rate, the re-runs of killed jobs and the worst settle
time (last fault to an empty queue; the bound is lease + 5 s).

    python -m bench.bench_chaos --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine_note
from tests.fixtures import postgres as pg
from tests.fixtures.chaos import ChaosReport, run_chaos


async def one_run(seed: int, jobs: int) -> ChaosReport:
    server = pg.PostgresServer()
    server.init()
    server.start()
    try:
        dsn = await pg.create_migrated_database(server, "chaos")
        with tempfile.TemporaryDirectory(prefix="jobqueue-chaos-") as workdir:
            return await run_chaos(server, dsn, Path(workdir), jobs=jobs, seed=seed)
    finally:
        server.destroy()


async def main(runs: int, jobs: int) -> int:
    reports = []
    for n in range(runs):
        report = await one_run(seed=n, jobs=jobs)
        reports.append(report)
        verdict = "pass" if report.passed else "FAIL"
        print(
            f"run {n + 1:>2}: {verdict}  completed {report.completed}/{report.jobs}  "
            f"kills {report.kills}  pg restarts {report.restarts}  "
            f"proxy faults {report.proxy_events}  twice-run attempts "
            f"{report.duplicate_attempts}  wrong results {report.wrong_results}  "
            f"re-run jobs {report.rerun_jobs}  settle {report.settle_seconds:.2f}s",
            flush=True,
        )
    passed = sum(r.passed for r in reports)
    print(f"\npass rate: {passed}/{runs}")
    print(f"re-runs of killed or cut jobs: {sum(r.rerun_jobs for r in reports)} in all")
    worst = max(r.settle_seconds for r in reports)
    print(f"worst settle time: {worst:.2f}s (bound: lease + 5 s = {reports[0].settle_bound:.0f}s)")
    print(machine_note())
    return 0 if passed == runs else 1


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=5000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs, args.jobs)))


if __name__ == "__main__":
    cli()
