"""The timeline of one end-to-end run: (time, replicas, ready jobs, running jobs) samples, the
figures drawn from them, and the JSON that bench/plot_e2e_timeline.py turns into a plot.

Timing is recorded and printed, never asserted: speed belongs to bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

from tests.fixtures.tools import REPO_ROOT

# Where a run's JSON goes besides the test's tmp path: a directory of e2e-timeline-<variant>.json.
TIMELINE_DIR_ENV = "JOBQUEUE_E2E_TIMELINE_DIR"
DEFAULT_TIMELINE_DIR = REPO_ROOT / ".tmp"

JOB_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'pending' AND run_at <= now()) AS ready,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'completed') AS completed
FROM jobs"""


@dataclass(frozen=True)
class PoolView:
    """What the cluster shows of the worker pool at one moment."""

    replicas: int  # the Deployment's spec.replicas, as the controller set it
    desired: int | None  # from the controller's jobqueue.dev/status annotation
    processes: int | None  # worker processes alive or draining (None where we cannot see them)


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the burst was enqueued
    replicas: int
    desired: int | None
    processes: int | None
    ready: int
    running: int
    completed: int


class Timeline:
    def __init__(
        self, dsn: str, pool_view: Callable[[], PoolView], *, interval: float = 0.25
    ) -> None:
        self._dsn = dsn
        self._pool_view = pool_view
        self._interval = interval
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.started_wall = time.time()  # t = 0 on the wall clock, to place logged events

    @contextlib.asynccontextmanager
    async def recording(self) -> AsyncIterator[Timeline]:
        """Sample from now (t = 0) until the block ends."""
        conn = await asyncpg.connect(self._dsn)
        self.started, self.started_wall = time.monotonic(), time.time()
        task = asyncio.create_task(self._run(conn), name="timeline")
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._sample(conn)  # the final state, always
            await conn.close(timeout=5)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def _run(self, conn: asyncpg.Connection) -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed sample is no failure
                await self._sample(conn)
            await asyncio.sleep(self._interval)

    async def _sample(self, conn: asyncpg.Connection) -> None:
        view = await asyncio.to_thread(self._pool_view)
        counts = await conn.fetchrow(JOB_COUNTS)
        assert counts is not None
        self.samples.append(
            Sample(
                round(self.elapsed(), 3),
                view.replicas,
                view.desired,
                view.processes,
                counts["ready"],
                counts["running"],
                counts["completed"],
            )
        )


def summarize(samples: list[Sample], total_jobs: int) -> dict[str, Any]:
    """Time to first scale-up, peak replicas, drain time and time back to zero, in seconds
    since the burst (None where the run never got there)."""

    def first(predicate: Callable[[Sample], bool], after: float = -1.0) -> float | None:
        return next((s.t for s in samples if s.t > after and predicate(s)), None)

    scaled_up = first(lambda s: s.replicas > 0)
    first_process = first(lambda s: (s.processes or 0) > 0)
    drained = first(lambda s: s.completed >= total_jobs)
    back_to_zero = None
    if drained is not None:
        back_to_zero = first(lambda s: s.replicas == 0 and not s.processes, after=drained)
    return {
        "total_jobs": total_jobs,
        "first_scale_up_s": scaled_up,
        "first_worker_process_s": first_process,
        "peak_replicas": max((s.replicas for s in samples), default=0),
        "drain_s": drained,
        "back_to_zero_s": back_to_zero,
        "jobs_per_second": round(total_jobs / drained, 1) if drained else None,
        "samples": len(samples),
    }


def describe(summary: dict[str, Any]) -> str:
    def seconds(key: str) -> str:
        value = summary.get(key)
        return "never" if value is None else f"{value:.1f} s"

    return (
        f"first scale-up {seconds('first_scale_up_s')}, "
        f"first worker process {seconds('first_worker_process_s')}, "
        f"peak {summary['peak_replicas']} replicas, "
        f"{summary['total_jobs']} jobs drained in {seconds('drain_s')} "
        f"({summary['jobs_per_second']} jobs/s), "
        f"back to zero {seconds('back_to_zero_s')}"
    )


def write_timeline(
    variant: str,
    samples: list[Sample],
    summary: dict[str, Any],
    settings: dict[str, Any],
    directories: list[Path],
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """The run as JSON, into each directory (and the one JOBQUEUE_E2E_TIMELINE_DIR names)."""
    document = {
        "variant": variant,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": settings,
        "summary": summary,
        "samples": [asdict(s) for s in samples],
        **(extra or {}),
    }
    targets = list(directories)
    if os.environ.get(TIMELINE_DIR_ENV):
        targets.append(Path(os.environ[TIMELINE_DIR_ENV]))
    written = []
    for directory in targets:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"e2e-timeline-{variant}.json"
        path.write_text(json.dumps(document, indent=1))
        written.append(path)
    return written
