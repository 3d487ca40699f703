"""The release on a kind cluster: the real image, the bundled PostgreSQL (StatefulSet, headless
Service, probes, a PVC on kind's local-path storage), the migration hook Job, real kubelets; the
test reaches the API and the database through `kubectl port-forward`, and watches the worker
pods."""

from __future__ import annotations

import contextlib
import json
import time
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
from tests.chart import chart_support
from tests.chart.chart_support import CHART, enforce_restricted
from tests.e2e import e2e_support as e2e
from tests.e2e import real_pods
from tests.e2e.timeline import PoolView
from tests.fixtures.pod_watch import PodWatch, core_api
from tests.fixtures.report import report
from tests.kind.kind_support import (
    E2E_IMAGE_REPOSITORY,
    IMAGE_TAG,
    KindCluster,
    KindImages,
    PortForward,
    required_tool,
    run,
)

POSTGRES_SERVICE = f"{e2e.RELEASE}-job-queue-postgresql"
API_SERVICE = f"{e2e.RELEASE}-job-queue-api"
INSTALL_TIMEOUT = "12m"


def chart_values(scenario: e2e.Scenario, images: KindImages) -> dict[str, Any]:
    """The scenario's pool, our image, and (built here) our PostgreSQL image; the chart's
    defaults otherwise: the bundled database with persistence, and the migration hook."""
    values = e2e.pool_values(scenario)
    values["config"]["handlerModules"] = ["e2e_handlers"]
    values["image"] = {
        "repository": E2E_IMAGE_REPOSITORY,
        "tag": IMAGE_TAG,
        "pullPolicy": "Never",  # loaded into the nodes by `kind load docker-image`
    }
    if images.postgres_image:
        repository, tag = images.postgres_image.rsplit(":", 1)
        values["postgresql"] = {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            # a kind node's disk is the host's: a small claim is plenty for the burst
            "persistence": {"size": "1Gi"},
        }
    return values


@dataclass
class KindStack:
    cluster: Any  # a KindCluster, or (tests/containers) the ControlPlane a real node joined
    namespace: str
    dsn: str  # kind: as the runtime role (the API's and workers' own), which reads the ledger
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
        return real_pods.watch_events(self.workers.history)

    def exit_problems(self, since: float) -> str:
        return real_pods.exit_problems(self, since)


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


def database_dsn(cluster: KindCluster, namespace: str, role: str, port: int) -> str:
    """A DSN of one of the bundled PostgreSQL's roles (`runtime` or `owner`), with its user and
    Secret key as the chart's defaults name them, through the port-forward on `port`."""
    auth = chart_support.chart_values()["postgresql"]["auth"]
    user, key = {
        "runtime": (auth["username"], auth["existingSecretPasswordKey"]),
        "owner": (auth["ownerUsername"], auth["existingSecretOwnerPasswordKey"]),
    }[role]
    password = e2e.secret_value(cluster, namespace, POSTGRES_SERVICE, key)
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/"
        f"{quote(auth['database'], safe='')}"
    )


async def settled(stack: KindStack, api_answers: str) -> None:
    """Wait for the API to answer (`api_answers` says how it is reached) and the pool at zero."""
    await e2e.eventually(stack.api.ready, what=api_answers, context=stack.logs)
    await e2e.eventually(stack.at_zero, what="the worker pool to be at zero", context=stack.logs)


@contextlib.asynccontextmanager
async def kind_stack(
    cluster: KindCluster, images: KindImages, tmp_path: Path, scenario: e2e.Scenario
) -> AsyncIterator[KindStack]:
    """Install into a fresh restricted namespace (helm waits for the migration hook Job, which
    retries until the bundled database is up), port-forward, and wait for the API to answer
    and the pool to be at zero."""
    namespace = f"jobqueue-e2e-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    enforce_restricted(cluster, namespace)
    forwards: list[PortForward] = []
    api: e2e.QueueApi | None = None
    try:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(chart_values(scenario, images)))
        started = time.monotonic()
        # No --wait: the API is ready only once the post-install hook has migrated, and helm
        # runs that hook after --wait (charts/job-queue/README.md). helm waits for the hook.
        run(
            [
                required_tool("helm"), "--kubeconfig", str(cluster.kubeconfig), "install",
                e2e.RELEASE, str(CHART), "--namespace", namespace, "--values", str(values_file),
                "--timeout", INSTALL_TIMEOUT,
            ],
            timeout=900,
        )  # fmt: skip
        report(f"kind: helm install (hook Job done) took {time.monotonic() - started:.1f} s")
        forwards.append(PortForward(cluster, namespace, POSTGRES_SERVICE, 5432, tmp_path))
        forwards.append(PortForward(cluster, namespace, API_SERVICE, 8001, tmp_path))
        dsn, owner_dsn = (
            database_dsn(cluster, namespace, role, forwards[0].local_port)
            for role in ("runtime", "owner")
        )
        # The ledger is schema: its owner creates it, as a migration would. The chart's
        # default privileges then give the runtime role (the workers' handler) its rows; the
        # runtime role itself may not create tables (docs/security.md).
        await e2e.create_runs_table(owner_dsn)
        token = e2e.secret_value(cluster, namespace, e2e.API_TOKEN_SECRET, "token")
        api = e2e.QueueApi(f"http://127.0.0.1:{forwards[1].local_port}", token)
        with watching_workers(cluster, namespace) as (watch, apps):
            stack = KindStack(cluster, namespace, dsn, scenario, api, apps, watch)
            await settled(stack, "the API to answer through kubectl port-forward")
            yield stack
    finally:
        if api is not None:
            await api.close()
        for forward in forwards:
            forward.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
