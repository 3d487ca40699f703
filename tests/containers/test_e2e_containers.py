"""L5 on a real node: `helm install` of the chart with our image, run by a real kubelet and
containerd under the restricted Pod Security profile, with the chart's probes really probed, the
migration hook Job really run, DNS and Service routing really used.

The scenario is the kwok suite's (tests/e2e/scenario.py): a burst through the API's Service, the
in-cluster controller (its own ServiceAccount) scales the workers 0 -> N -> 0, every job runs
exactly once, `helm test` passes and `kubectl jobqueue status` shows the decisions. A variant
deletes the busiest worker pod mid-burst: it drains within its grace period and no job runs
twice. Deadlines only bound a hang; the timeline is printed, never asserted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tests.containers.node_stack import (
    NodeStack,
    container_endings,
    first_container_start,
    node_stack,
)
from tests.e2e import e2e_support as e2e
from tests.e2e.scenario import check_scaling, completed_at_least, run_burst
from tests.e2e.timeline import Timeline
from tests.fixtures.node import RealNode
from tests.fixtures.report import report
from tests.k8s.test_kubectl_plugin import table

pytestmark = pytest.mark.containers

SCENARIO = e2e.Scenario()
DELETE_AFTER_COMPLETED = SCENARIO.total_jobs // 4
FIRST_JOB_STARTED = "SELECT min(started_at) FROM jobs"
BUSIEST_POD = """
SELECT w.name, count(*) AS running
FROM jobs AS j JOIN workers AS w ON w.id = j.worker_id
WHERE j.status = 'running'
GROUP BY w.name ORDER BY running DESC LIMIT 1"""


async def first_job_start(dsn: str) -> float | None:
    conn = await asyncpg.connect(dsn)
    try:
        started = await conn.fetchval(FIRST_JOB_STARTED)
    finally:
        await conn.close()
    return started.timestamp() if started else None


async def print_timeline(stack: NodeStack, timeline: Timeline, variant: str) -> None:
    """Burst to: first scale-up, first container started, first job started on a pod, drained,
    back at zero."""
    summary: dict[str, float | None] = dict.fromkeys(
        ("scale-up", "container", "job", "drained", "zero")
    )
    samples = timeline.samples
    summary["scale-up"] = next((s.t for s in samples if s.replicas > 0), None)
    container = first_container_start(stack.workers.history, timeline.started_wall)
    job = await first_job_start(stack.dsn)
    for key, wall in (("container", container), ("job", job)):
        if wall is not None:
            summary[key] = round(wall - timeline.started_wall, 2)
    summary["drained"] = next(
        (s.t for s in samples if s.completed >= stack.scenario.total_jobs), None
    )
    drained = summary["drained"]
    if drained is not None:
        summary["zero"] = next((s.t for s in samples if s.t > drained and s.replicas == 0), None)
    text = ", ".join(f"{k} {'never' if v is None else f'{v:.1f} s'}" for k, v in summary.items())
    report(f"real-pod timeline ({variant}, from the burst): {text}")
    before = [e for e in stack.workers.history if e[0] < timeline.started_wall]
    report(f"the install's worker pod ({variant}): {container_endings(before) or 'no exit'}")


def plugin_status(stack: NodeStack) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "controller.kubectl_plugin", "status", "-n", stack.namespace,
         "--kubeconfig", str(stack.cluster.kubeconfig)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_burst_on_real_pods_scales_from_zero_and_back_running_every_job_once(
    real_node: RealNode, helm_bin: Path, node_dsn: str, tmp_path: Path
) -> None:
    async with node_stack(real_node, helm_bin, node_dsn, tmp_path, SCENARIO) as stack:
        job_ids, timeline = await run_burst(stack, "real-pods", [tmp_path])
        await print_timeline(stack, timeline, "normal")
        assert await e2e.ledger_problems(stack.dsn, job_ids) == []
        check_scaling(stack, timeline)
        # scale-down drained every worker: exit 0 on SIGTERM, no SIGKILL after the grace period
        assert stack.exit_problems(timeline.started_wall) == ""

        (row,) = table(plugin_status(stack))
        print(f"kubectl jobqueue status: {row}")
        assert row["NAME"] == e2e.WORKER_DEPLOYMENT, row
        assert (row["DESIRED"], row["ACTUAL"]) == ("0", "0"), row
        assert row["LAST SCALE"].endswith("s"), row

        # the chart's test Job: enqueue through the API Service by its DNS name, wait for a
        # worker the controller starts from zero. (`helm test --logs` reads a Pod named as the
        # hook, so it cannot show a Job's log: the log is fetched here when the test fails.)
        out = stack.helm.run(
            "--kubeconfig", str(stack.cluster.kubeconfig), "test", e2e.RELEASE,
            "--namespace", stack.namespace, "--timeout", "5m", timeout=400,
        )  # fmt: skip
        if out.returncode != 0:
            job_log = stack.cluster.kubectl(
                "logs", "-n", stack.namespace, f"job/{e2e.RELEASE}-job-queue-test-enqueue",
                check=False,
            )  # fmt: skip
            pytest.fail(f"helm test failed:\n{out.stderr}\n{job_log.stdout}{job_log.stderr}")
        report(f"helm test on real pods: {out.stdout.count('Phase:          Succeeded')} passed")


async def test_busy_pod_deleted_mid_burst_drains_and_runs_no_job_twice(
    real_node: RealNode, helm_bin: Path, node_dsn: str, tmp_path: Path
) -> None:
    async with node_stack(real_node, helm_bin, node_dsn, tmp_path, SCENARIO) as stack:
        deleted: list[tuple[str, int]] = []

        async def delete_busiest() -> None:
            await e2e.eventually(
                lambda: completed_at_least(stack.dsn, DELETE_AFTER_COMPLETED),
                what=f"{DELETE_AFTER_COMPLETED} jobs completed", context=stack.logs,
            )  # fmt: skip
            conn = await asyncpg.connect(stack.dsn)
            try:
                row = await conn.fetchrow(BUSIEST_POD)
            finally:
                await conn.close()
            assert row is not None, "no worker held a running job mid-burst"
            stack.cluster.kubectl(
                "delete", "pod", row["name"], "-n", stack.namespace, "--wait=false"
            )
            deleted.append((row["name"], int(row["running"])))

        started = time.monotonic()
        job_ids, timeline = await run_burst(stack, "real-pods-delete", [tmp_path],
                                            during=delete_busiest)  # fmt: skip
        await print_timeline(stack, timeline, "busy pod deleted")
        report(f"deleted {deleted} mid-burst, {time.monotonic() - started:.1f} s run")
        # drained, not rescued: every job one attempt, one run, no lease error
        assert await e2e.ledger_problems(stack.dsn, job_ids) == []
        ((name, _),) = deleted
        ends = terminations(stack, name)
        assert ends and all(code == 0 for code in ends), f"{name} ended with {ends}"
        assert stack.exit_problems(timeline.started_wall) == ""


def terminations(stack: NodeStack, pod_name: str) -> list[int]:
    """The exit codes the watch saw for one pod's containers (137 would be a SIGKILL after
    the grace period)."""
    codes = []
    for _, _, pod in stack.workers.history:
        if pod["metadata"]["name"] != pod_name:
            continue
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if terminated:
                codes.append(int(terminated["exitCode"]))
    return sorted(set(codes))
