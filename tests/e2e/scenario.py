"""The end-to-end scenario both suites run (kwok here, kind where Docker is): from zero workers,
enqueue the burst through the API, wait until every job completed and the pool is back at zero,
record the timeline, and check how the controller scaled.

Deadlines only bound a hang; timings are printed and written, never asserted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from tests.e2e import e2e_support as e2e
from tests.e2e.timeline import (
    DEFAULT_TIMELINE_DIR,
    PoolView,
    Timeline,
    describe,
    summarize,
    write_timeline,
)
from tests.fixtures.report import report
from tests.k8s import harness

COMPLETION_DEADLINE = 300.0
BACK_TO_ZERO_DEADLINE = 120.0


class Stack(Protocol):
    """An installed release the scenario can drive and observe."""

    cluster: Any  # has kubectl(...) and get_json(...), as ControlPlane does
    namespace: str
    dsn: str
    scenario: e2e.Scenario
    api: e2e.QueueApi

    def pool_view(self) -> PoolView: ...
    def at_zero(self) -> bool: ...
    def logs(self) -> str: ...
    def pod_events(self) -> list[tuple[float, str, str]]: ...


async def completed_at_least(dsn: str, count: int) -> bool:
    return await e2e.completed_count(dsn) >= count


async def run_burst(
    stack: Stack,
    variant: str,
    out_dirs: list[Path],
    during: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[int], Timeline]:
    """Enqueue the burst, run `during` (e.g. a fault) while it drains, wait until every job
    completed and the pool is back at zero; write and print the timeline."""
    scenario = stack.scenario
    timeline = Timeline(stack.dsn, stack.pool_view)
    async with timeline.recording():
        job_ids = await stack.api.enqueue_burst(scenario)
        if during is not None:
            await during()
        await e2e.eventually(
            lambda: completed_at_least(stack.dsn, scenario.total_jobs),
            what="every job to complete", within=COMPLETION_DEADLINE, context=stack.logs,
        )  # fmt: skip
        await e2e.eventually(
            stack.at_zero, what="the pool back at zero", within=BACK_TO_ZERO_DEADLINE,
            context=stack.logs,
        )  # fmt: skip
    summary = summarize(timeline.samples, scenario.total_jobs)
    # pod starts, SIGTERMs, stops and injected kills, on the timeline's clock
    events = [
        {"t": round(at - timeline.started_wall, 3), "event": kind, "pod": pod}
        for at, kind, pod in stack.pod_events()
        if at >= timeline.started_wall
    ]
    written = write_timeline(
        variant, timeline.samples, summary, scenario.as_dict(),
        [*out_dirs, DEFAULT_TIMELINE_DIR / "e2e"], {"pod_events": events},
    )  # fmt: skip
    report(f"timeline ({variant}): {describe(summary)}; samples in {written[-1]}")
    return job_ids, timeline


def check_scaling(stack: Stack, timeline: Timeline) -> None:
    """Up from zero to the max in one step (Event and status annotation), and back to zero."""
    scenario = stack.scenario
    cluster, namespace = stack.cluster, stack.namespace
    # (Events of one second come back in no particular order: matched by what they say)
    ups = sorted(e["message"] for e in harness.events(
        cluster, namespace, e2e.WORKER_DEPLOYMENT, "ScaledUp"))  # fmt: skip
    # from zero, one replica first; then, the burst being one transaction, straight to the max
    assert ups and ups[0].startswith("Scaled up from 0 to 1 replicas (cold-start"), ups
    rest = f"Scaled up from 1 to {scenario.max_replicas} "
    assert any(message.startswith(rest) for message in ups), ups
    downs = harness.events(cluster, namespace, e2e.WORKER_DEPLOYMENT, "ScaledDown")
    assert downs and " to 0 replicas" in downs[-1]["message"], downs
    assert max(s.replicas for s in timeline.samples) == scenario.max_replicas
    assert max(s.desired or 0 for s in timeline.samples) == scenario.max_replicas, (
        "the status annotation never showed the scale-up"
    )
    status = harness.status(cluster, namespace, e2e.WORKER_DEPLOYMENT)
    assert (status["desired"], status["actual"]) == (0, 0), status
    assert status["lastScaleTime"], status


def check_deletion_order(history: list[tuple[float, str, dict[str, Any]]], delay: float) -> None:
    """On every scale-down the ReplicaSet removed pods the controller had costed, and none
    busier (by pod-deletion-cost) than a pod it kept."""
    steps = e2e.deletion_steps(history, gap=delay / 2)
    assert steps, "no worker pod was ever deleted"
    print("scale-down steps (pod-deletion-cost when each began):")
    for step in steps:
        print(f"  deleted {step['deleted']}, kept {step['survivors']}: {step['costs']}")
    assert e2e.deletion_cost_problems(steps) == []
