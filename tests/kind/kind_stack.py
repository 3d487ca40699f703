"""The release on a kind cluster: the real image, the bundled PostgreSQL, real kubelets; the test
reaches the API and the database through `kubectl port-forward`, and watches the worker pods."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from controller import annotations as ann
from tests.chart.chart_support import CHART
from tests.e2e import e2e_support as e2e
from tests.e2e.timeline import PoolView
from tests.fixtures.pod_watch import Pod, PodWatch, core_api
from tests.kind.kind_support import (
    E2E_IMAGE_REPOSITORY,
    IMAGE_TAG,
    KindCluster,
    PortForward,
    required_tool,
    run,
)

POSTGRES_SERVICE = f"{e2e.RELEASE}-job-queue-postgresql"
API_SERVICE = f"{e2e.RELEASE}-job-queue-api"
INSTALL_TIMEOUT = "15m"


def chart_values(scenario: e2e.Scenario) -> dict[str, Any]:
    values = e2e.pool_values(scenario)
    values["config"]["handlerModules"] = ["e2e_handlers"]
    values["image"] = {
        "repository": E2E_IMAGE_REPOSITORY,
        "tag": IMAGE_TAG,
        "pullPolicy": "Never",  # loaded into the nodes by `kind load docker-image`
    }
    # `helm install --wait` waits for the pods, and a post-install hook would only migrate
    # after that: migrate in an init container instead (see the chart's README)
    values["migrations"] = {"mode": "initContainer"}
    return values


@dataclass
class KindStack:
    cluster: Any  # a KindCluster, or (tests/containers) the ControlPlane a real node joined
    namespace: str
    dsn: str
    scenario: e2e.Scenario
    api: e2e.QueueApi
    apps: kube_client.AppsV1Api
    workers: PodWatch

    def pool_view(self) -> PoolView:
        response: Any = self.apps.read_namespaced_deployment(
            e2e.WORKER_DEPLOYMENT, self.namespace, _preload_content=False
        )
        deployment = json.loads(response.data)
        status = json.loads((deployment["metadata"].get("annotations") or {}).get(ann.STATUS, "{}"))
        with self.workers.lock:
            pods = len(self.workers.pods)  # a pod object lasts until its container has exited
        return PoolView(int(deployment["spec"].get("replicas") or 0), status.get("desired"), pods)

    def at_zero(self) -> bool:
        return self.pool_view().replicas == 0 and not self.workers.pods

    def logs(self) -> str:
        parts = []
        for component in ("controller", "api"):
            out = self.cluster.kubectl(
                "logs", "-n", self.namespace, f"deployment/{e2e.RELEASE}-job-queue-{component}",
                "--tail=30", check=False,
            )  # fmt: skip
            parts.append(f"--- {component}\n{out.stdout}{out.stderr}")
        return "\n".join(parts)

    def pod_events(self) -> list[tuple[float, str, str]]:
        return watch_events(self.workers.history)


def watch_events(history: list[tuple[float, str, Pod]]) -> list[tuple[float, str, str]]:
    """Pod creations, deletion requests (the kubelet's SIGTERM) and removals, from a watch."""
    events, deleting = [], set()
    for at, kind, pod in history:
        name = pod["metadata"]["name"]
        if kind == "ADDED":
            events.append((at, "start", name))
        elif kind == "DELETED":
            events.append((at, "stop", name))
        elif pod["metadata"].get("deletionTimestamp") and name not in deleting:
            deleting.add(name)
            events.append((at, "sigterm", name))
    return events


def worker_exit_problems(history: list[tuple[float, str, Pod]]) -> list[str]:
    """Worker containers that restarted, or ended with anything but exit code 0 (137 would be
    the kubelet's SIGKILL after the grace period)."""
    problems = set()
    for _, _, pod in history:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            name = f"{pod['metadata']['name']}/{status['name']}"
            if status.get("restartCount"):
                problems.add(f"{name} restarted {status['restartCount']} times")
            terminated = (status.get("state") or {}).get("terminated")
            if terminated and terminated.get("exitCode") != 0:
                problems.add(f"{name} exited with {terminated.get('exitCode')}")
    return sorted(problems)


@contextlib.contextmanager
def watching_workers(
    cluster: Any, namespace: str
) -> Iterator[tuple[PodWatch, kube_client.AppsV1Api]]:
    """A PodWatch on the release's worker pods, started here and stopped on the way out, and an
    AppsV1Api of the cluster: what a stack reads the pool through."""
    deployment = cluster.get_json("deployment", e2e.WORKER_DEPLOYMENT, "-n", namespace)
    watch = PodWatch(core_api(cluster.kubeconfig), namespace, e2e.selector_of(deployment))
    watch.start()
    try:
        yield (
            watch,
            kube_client.AppsV1Api(kube_config.new_client_from_config(str(cluster.kubeconfig))),
        )
    finally:
        watch.stop()


async def settled(stack: KindStack, api_answers: str) -> None:
    """Wait for the API to answer (`api_answers` says how it is reached) and the pool at zero."""
    await e2e.eventually(stack.api.ready, what=api_answers, context=stack.logs)
    await e2e.eventually(stack.at_zero, what="the worker pool to be at zero", context=stack.logs)


@contextlib.asynccontextmanager
async def kind_stack(
    cluster: KindCluster, tmp_path: Path, scenario: e2e.Scenario
) -> AsyncIterator[KindStack]:
    """Install into a fresh namespace, port-forward, and wait for the pool to be at zero."""
    namespace = f"jobqueue-e2e-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    forwards: list[PortForward] = []
    api: e2e.QueueApi | None = None
    try:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(chart_values(scenario)))
        run(
            [
                required_tool("helm"), "--kubeconfig", str(cluster.kubeconfig), "install",
                e2e.RELEASE, str(CHART), "--namespace", namespace, "--values", str(values_file),
                "--wait", "--timeout", INSTALL_TIMEOUT,
            ],
            timeout=1200,
        )  # fmt: skip
        forwards.append(PortForward(cluster, namespace, API_SERVICE, 8001, tmp_path))
        forwards.append(PortForward(cluster, namespace, POSTGRES_SERVICE, 5432, tmp_path))
        password = e2e.secret_value(cluster, namespace, POSTGRES_SERVICE, "password")
        dsn = (
            f"postgresql://jobqueue:{quote(password, safe='')}@127.0.0.1:"
            f"{forwards[1].local_port}/jobqueue"
        )
        await e2e.create_runs_table(dsn)
        token = e2e.secret_value(cluster, namespace, e2e.API_TOKEN_SECRET, "token")
        api = e2e.QueueApi(f"http://127.0.0.1:{forwards[0].local_port}", token)
        with watching_workers(cluster, namespace) as (watch, apps):
            stack = KindStack(cluster, namespace, dsn, scenario, api, apps, watch)
            await settled(stack, "the API to be ready")
            yield stack
    finally:
        if api is not None:
            await api.close()
        for forward in forwards:
            forward.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
