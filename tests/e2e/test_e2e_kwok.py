"""L4 end to end: helm install, enqueue a burst through the API, and watch the pool go 0 -> N -> 0
with real worker processes, every job completing exactly once; then the same with a worker
SIGKILLed mid-burst.

kwok runs the pods' lifecycle; the pod runner backs each pod with a real `jobqueue` process
(worker, API, controller). The scenario itself is tests/e2e/scenario.py, which the kind suite
runs too. Deadlines only bound a hang: timings are printed, never asserted.
"""

from __future__ import annotations

import dataclasses
import signal
from functools import partial
from pathlib import Path

import asyncpg
import pytest

from tests.e2e import e2e_support as e2e
from tests.e2e.kwok_stack import KwokStack, kwok_stack
from tests.e2e.scenario import check_deletion_order, check_scaling, completed_at_least, run_burst
from tests.fixtures.kube import ControlPlane
from tests.fixtures.pod_runner import ProcessStop
from tests.fixtures.report import report

pytestmark = pytest.mark.kwok

NORMAL = e2e.Scenario()
# A short lease, so the killed worker's jobs are rescued within seconds.
FAULT = dataclasses.replace(NORMAL, lease_seconds=5.0)
KILL_AFTER_COMPLETED = NORMAL.total_jobs // 4
MAX_KILLS = 5

HOLDERS = """
SELECT w.id::text AS worker_id, w.name, count(*) AS running
FROM jobs AS j JOIN workers AS w ON w.id = j.worker_id
WHERE j.status = 'running'
GROUP BY w.id, w.name
ORDER BY running DESC"""
# Running under the dead worker, or already rescued from it (the rescue names it): by its
# liveness lock, within a second of the kill, or by its lease.
LEFT_RUNNING = """
SELECT id FROM jobs
WHERE (status = 'running' AND worker_id = $1::uuid)
   OR last_error LIKE 'worker ' || $1 || ' died (its liveness lock was free) %'
   OR last_error LIKE 'lease expired: worker ' || $1 || ' %'"""


async def test_burst_scales_from_zero_to_max_and_back_running_every_job_once(
    kwok_cluster: ControlPlane, namespace: str, helm_bin: Path, pg_dsn: str, tmp_path: Path
) -> None:
    async with kwok_stack(kwok_cluster, namespace, helm_bin, pg_dsn, tmp_path, NORMAL) as stack:
        job_ids, timeline = await run_burst(stack, "normal", [tmp_path])
        assert await e2e.ledger_problems(pg_dsn, job_ids) == []
        check_scaling(stack, timeline)
        check_scale_down(stack, killed_pids=set())


async def test_worker_killed_mid_burst_loses_no_job_and_runs_none_twice(
    kwok_cluster: ControlPlane, namespace: str, helm_bin: Path, pg_dsn: str, tmp_path: Path
) -> None:
    async with kwok_stack(kwok_cluster, namespace, helm_bin, pg_dsn, tmp_path, FAULT) as stack:
        crashes: list[e2e.Crash] = []

        async def kill_mid_burst() -> None:
            await e2e.eventually(
                lambda: completed_at_least(stack.dsn, KILL_AFTER_COMPLETED),
                what=f"{KILL_AFTER_COMPLETED} jobs completed", context=stack.logs,
            )  # fmt: skip
            crashes.extend(await crash_workers(stack))

        job_ids, timeline = await run_burst(stack, "fault", [tmp_path], during=kill_mid_burst)
        rescued = sum(len(c.left_running) for c in crashes)
        killed = [c.pod for c in crashes]
        report(f"fault: killed {killed}; {rescued} jobs left running were rescued")
        assert rescued > 0, f"no kill caught a worker holding jobs: {crashes}"
        assert await e2e.ledger_problems(pg_dsn, job_ids, crashes) == []
        check_scaling(stack, timeline)
        check_scale_down(stack, killed_pids={crash.pid for crash in crashes})


async def crash_workers(stack: KwokStack) -> list[e2e.Crash]:
    """SIGKILL the worker process holding the most running jobs, until one dies holding some."""
    crashes = []
    conn = await asyncpg.connect(stack.dsn)
    try:
        for _ in range(MAX_KILLS):
            holders = [r for r in await conn.fetch(HOLDERS) if r["name"] in stack.workers.running]
            if not holders:
                break  # the burst is over
            victim = holders[0]
            pid = stack.workers.kill(victim["name"])
            if pid is None:
                continue  # its pod was deleted just now
            await e2e.eventually(
                partial(_has_stopped, stack, pid), what=f"the runner to see pid {pid} die",
                interval=0.1,
            )  # fmt: skip
            left = await conn.fetch(LEFT_RUNNING, victim["worker_id"])
            crashes.append(
                e2e.Crash(
                    victim["worker_id"], victim["name"], pid, frozenset(r["id"] for r in left)
                )
            )
            if left:
                break
    finally:
        await conn.close()
    return crashes


def _has_stopped(stack: KwokStack, pid: int) -> bool:
    return any(stop.pid == pid for stop in stack.workers.stops)


def check_scale_down(stack: KwokStack, killed_pids: set[int]) -> None:
    """Idle pods went first, and every removed worker drained: SIGTERM, exit 0 within the grace
    period (in-flight jobs finished: the ledger shows no retry)."""
    check_deletion_order(stack.workers.watch.history, stack.scenario.scale_down_delay)
    stops = stack.workers.stops
    unexpected = [stop for stop in stops if not _ended_as_expected(stop, killed_pids)]
    assert unexpected == [], f"worker processes that did not drain cleanly: {unexpected}"
    assert len([s for s in stops if s.reason == "deleted"]) >= stack.scenario.max_replicas


def _ended_as_expected(stop: ProcessStop, killed_pids: set[int]) -> bool:
    if stop.pid in killed_pids:
        return stop.code == -signal.SIGKILL
    # the pod was deleted, and the process drained and exited 0 before its grace period ended
    return stop.reason == "deleted" and stop.code == 0 and not stop.killed_after_grace
