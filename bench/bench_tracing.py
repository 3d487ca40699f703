"""The drain benchmark's tracing figures: one worker process drains N no-op jobs with tracing
off, with tracing on, and as the code before tracing (worker/ at an older commit, taken with
`git archive`), each on a fresh database of one throwaway server, in one run.

    python bench/bench_tracing.py --jobs 20000 --rounds 3 --before 935c783

"On" is the SDK with a BatchSpanProcessor whose exporter drops what it gets: it times making
the spans (three per job: claim, process and the acknowledgement, and a traceparent to parse),
not an exporter's encoding or network, which depend on where spans go. Its jobs carry a
traceparent, as jobs enqueued through a traced API do; the other variants' do not.
"on-1in10" is the same with nine jobs in ten carrying an unsampled traceparent, as an API that
samples 10% of its traces writes them: the worker follows its parent's decision.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench import common, contenders
from bench.bench_drain import Result, check_all_completed, measure
from bench.common import REPO, SQL, fresh_database, machine_note, print_table, ratio, server

# variant -> the share of its jobs whose traceparent is sampled (None: no traceparent)
VARIANTS: dict[str, float | None] = {"before": None, "off": None, "on": 1.0, "on-1in10": 0.1}
DISCARD = "bench.bench_tracing:discard_spans"


def discard_spans(service_name: str) -> None:
    """JOBQUEUE_OTEL_CONFIGURE target: the SDK's batch processor, into an exporter that drops."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)


def worker_child(*args: Any) -> None:
    """Runs contenders.ours with worker/ from code_root (None: this tree), traced or not; `args`
    are ours's (index, ready, go, stop, dsn, slots, ack_batch), then code_root and traced."""
    *ours_args, code_root, traced = args
    if code_root:
        # this fresh interpreter imported worker/ of this tree with bench.common: forget it,
        # so that every worker module comes from the older tree
        for name in [m for m in sys.modules if m == "worker" or m.startswith("worker.")]:
            del sys.modules[name]
        sys.path.insert(0, code_root)
    extra: dict[str, Any] = {}
    if traced:
        from worker import tracing
        from worker.settings import TracingSettings

        extra = {"otel": True, "otel_configure": DISCARD}
        # before the clock starts: the SDK's import is not the hot path's cost
        tracing.setup(TracingSettings(**extra), "jobqueue-worker")
    contenders.ours(*ours_args, extra)


def random_traceparent(sampled: bool) -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{'01' if sampled else '00'}"


async def fill(dsn: str, count: int, sampled: float | None, chunk: int = 10_000) -> None:
    from worker.db.jobs import NewJob, enqueue_many

    every = None if not sampled else round(1 / sampled)
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(0, count, chunk):
            jobs = [
                NewJob(
                    "noop",
                    traceparent=None if every is None else random_traceparent(i % every == 0),
                )
                for i in range(start, min(start + chunk, count))
            ]
            await enqueue_many(conn, jobs)
    finally:
        await conn.close()


def extract(rev: str, into: str) -> str:
    """worker/ as it was at `rev`, under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "worker"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


async def run(
    count: int, rounds: int, slots: int, ack_batch: int, before: str, only: list[str]
) -> list[Any]:
    results: list[tuple[str, Result]] = []
    with tempfile.TemporaryDirectory() as old_tree, server() as srv:
        extract(before, old_tree)
        for round_ in range(rounds):
            # interleaved, so that drift on a shared machine hits every variant, and in the
            # reverse order every other round, so that going first or last favours none
            order = only if round_ % 2 == 0 else only[::-1]
            for variant in order:
                index = only.index(variant)
                sampled = VARIANTS[variant]
                dsn = await fresh_database(srv, f"bench_tracing_{index}", migrated=True)
                result = await measure(
                    f"{variant} (round {round_ + 1})",
                    dsn,
                    count,
                    lambda d, n, sampled=sampled: fill(d, n, sampled),  # type: ignore[misc]
                    worker_child,
                    (
                        slots,
                        ack_batch,
                        old_tree if variant == "before" else None,
                        variant.startswith("on"),
                    ),
                    1,
                    SQL["jobs_left"],
                )
                await check_all_completed(dsn, count)
                results.append((variant, result))
    return results


def report(results: list[tuple[str, Result]], count: int, slots: int, before: str) -> None:
    ran = {name for name, _ in results}
    best = {v: max(r.jobs_per_second for name, r in results if name == v) for v in ran}
    rows = [("run", "jobs/s", "seconds")]
    rows += [(r.name, f"{r.jobs_per_second:,.0f}", f"{r.seconds:.2f}") for _, r in results]
    print_table(
        f"Drain of {count:,} no-op jobs, 1 worker process (MAX_CONCURRENT_JOBS={slots}); "
        f"before = worker/ at {before}",
        rows,
    )
    print("\n  best of each: " + ", ".join(f"{v} {b:,.0f}" for v, b in best.items()) + " jobs/s")
    for label, ours, anchor in (
        ("tracing off vs before", "off", "before"),
        ("tracing on vs off", "on", "off"),
        ("tracing on-1in10 vs off", "on-1in10", "off"),
    ):
        if ours in best and anchor in best:
            print(f"  {label + ':':29} {ratio(best[ours], best[anchor])}")
    print(f"  machine: {machine_note()}")


def main() -> None:
    before = (
        "the commit whose worker/ is the 'before' variant: main just before tracing "
        "(default: the main that tracing was last merged with)"
    )
    parser = common.option_parser(
        __doc__,
        "rounds slots ack_batch",
        jobs=20_000,
        before=("935c783", before),
        only=(",".join(VARIANTS), f"comma-separated variants to run, of: {', '.join(VARIANTS)}"),
    )
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",")]
    unknown = [name for name in only if name not in VARIANTS]
    if unknown:
        parser.error(f"--only: unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    results = asyncio.run(
        run(args.jobs, args.rounds, args.slots, args.ack_batch, args.before, only)
    )
    report(results, args.jobs, args.slots, args.before)


if __name__ == "__main__":
    main()
