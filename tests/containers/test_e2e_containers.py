"""L5 on a real node: `helm install` of the chart with our image, run by a real kubelet and
containerd under the restricted Pod Security profile, with the chart's probes really probed, the
migration hook Job really run, DNS and Service routing really used.

The scenario is the kwok suite's (tests/e2e/scenario.py): a burst through the API's Service, the
in-cluster controller (its own ServiceAccount) scales the workers 0 -> N -> 0, every job runs
exactly once, `helm test` passes and `kubectl jobqueue status` shows the decisions. The busy-pod
deletion mid-burst runs on kind (tests/kind), whose kubelet and containerd are the same builds:
CI has no time for both. Deadlines only bound a hang; the timeline is printed, never asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.containers.node_stack import NodeStack, node_stack
from tests.e2e import e2e_support as e2e
from tests.e2e.real_pods import print_timeline
from tests.e2e.scenario import check_scaling, run_burst
from tests.fixtures.node import RealNode
from tests.fixtures.report import report
from tests.k8s.test_kubectl_plugin import table

pytestmark = pytest.mark.containers

SCENARIO = e2e.Scenario()


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
        await print_timeline(stack, timeline, "normal", "real-pod")
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
