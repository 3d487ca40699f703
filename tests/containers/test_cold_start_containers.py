"""L5 on a real node: the first job's start after a burst, over several bursts from zero, on
real pods (our image, a real kubelet and containerd), as a distribution and phase by phase.

Each burst goes through the API's Service in one request; the pool scales from zero (one
replica first, then the rest), runs every job once, and goes back to zero before the next.
Printed, never asserted: the first job's p50, p95 and max after the burst, and where the
seconds went (pod created and container running from a watch, the worker's own phases from
workers.startup). Asserted: every burst scaled from zero and back, and every job ran once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import asyncpg
import pytest

from tests.containers.node_stack import NodeStack, node_stack
from tests.e2e import e2e_support as e2e
from tests.e2e.scenario import completed_at_least
from tests.fixtures.node import RealNode
from tests.fixtures.report import report
from tests.k8s import harness

pytestmark = pytest.mark.containers

BURSTS = 6
# Small bursts that still ask for the most replicas (20 jobs / 5 per replica = 4), a short
# scale-down delay, so each burst starts from zero within seconds of the last one.
SCENARIO = dataclasses.replace(
    e2e.Scenario(), total_jobs=20, job_seconds=0.2, jobs_per_replica=5, scale_down_delay=3
)
BURST_TIMES = """
SELECT extract(epoch FROM min(created_at))::float8 AS burst,
       extract(epoch FROM min(started_at) - min(created_at))::float8 AS first_job
FROM jobs WHERE id = ANY ($1::bigint[])"""
PHASES = ("processStarted", "imported", "connected", "registered", "firstClaim")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * q)) - 1]


def pod_moments(stack: NodeStack, since: float) -> dict[str, float]:
    """When the watch first saw a worker pod made after `since`, and a container running."""
    found: dict[str, float] = {}
    for at, kind, pod in stack.workers.history:
        if at < since:
            continue
        if kind == "ADDED":
            found.setdefault("podCreated", at)
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if any((s.get("state") or {}).get("running") for s in statuses):
            found.setdefault("containerRunning", at)
    return found


async def test_first_job_on_real_pods_over_bursts_from_zero(
    real_node: RealNode, helm_bin: Path, node_dsn: str, tmp_path: Path
) -> None:
    async with node_stack(real_node, helm_bin, node_dsn, tmp_path, SCENARIO) as stack:
        firsts: list[float] = []
        phases: dict[str, list[float]] = {}
        every_job: list[int] = []
        for index in range(1, BURSTS + 1):
            job_ids = await stack.api.enqueue_burst(SCENARIO)
            every_job += job_ids
            await e2e.eventually(
                lambda n=len(every_job): completed_at_least(stack.dsn, n),
                what=f"burst {index} to complete", context=stack.logs,
            )  # fmt: skip
            conn = await asyncpg.connect(stack.dsn)
            try:
                times = await conn.fetchrow(BURST_TIMES, job_ids)
                startups = [json.loads(r[0]) for r in await conn.fetch(
                    "SELECT startup FROM workers WHERE startup IS NOT NULL")]  # fmt: skip
            finally:
                await conn.close()
            burst = times["burst"]
            firsts.append(times["first_job"])
            first = min(
                (s for s in startups if s.get("registered", 0) >= burst),
                key=lambda s: s["firstClaim"], default=None,
            )  # fmt: skip
            seen = pod_moments(stack, burst)
            seen.update({p: first[p] for p in PHASES if first and p in first})
            for phase, at in seen.items():
                phases.setdefault(phase, []).append(at - burst)
            report(f"real pods, burst {index}: first job {times['first_job']:.2f} s after it")
            await e2e.eventually(
                stack.at_zero, what=f"the pool back at zero after burst {index}",
                context=stack.logs,
            )  # fmt: skip
        assert await e2e.ledger_problems(stack.dsn, every_job) == []
        ups = [
            e["message"] for e in harness.events(
                stack.cluster, stack.namespace, e2e.WORKER_DEPLOYMENT, "ScaledUp")
        ]  # fmt: skip
        assert sum(1 for m in ups if m.startswith("Scaled up from 0 to 1 ")) >= BURSTS, ups

    report(
        f"real pods, first job after the burst over {BURSTS} bursts: "
        f"p50 {percentile(firsts, 0.5):.2f} s, p95 {percentile(firsts, 0.95):.2f} s, "
        f"max {max(firsts):.2f} s"
    )
    order = ["podCreated", "containerRunning", *PHASES]
    medians = ", ".join(
        f"{phase} {statistics.median(phases[phase]):.2f} s" for phase in order if phase in phases
    )
    report(f"real pods, where the seconds went (p50 after the burst): {medians}")
