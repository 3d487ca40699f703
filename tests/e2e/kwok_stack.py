"""The L4 stack: the chart installed with helm on the kwok cluster, and a pod runner backing its
pods with real local processes (workers, the API, and the controller, which talks to the API
server with its own ServiceAccount's token, so the chart's RBAC is what it gets)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from controller import annotations as ann
from tests.chart.chart_support import CHART, Helm, enforce_restricted
from tests.e2e import e2e_support as e2e
from tests.e2e.timeline import PoolView
from tests.fixtures.kube import ControlPlane
from tests.fixtures.pod_runner import PodRunner
from tests.fixtures.processes import free_port, log_tail

DATABASE_SECRET = "jobqueue-database"
HANDLER_MODULE = "tests.e2e.e2e_handlers"
SERVICES_SELECTOR = (
    f"app.kubernetes.io/instance={e2e.RELEASE},app.kubernetes.io/component in (api,controller)"
)


def chart_values(scenario: e2e.Scenario, database: e2e.Database) -> dict[str, Any]:
    values = e2e.pool_values(scenario)
    values["config"]["handlerModules"] = [HANDLER_MODULE]
    values["postgresql"] = {"enabled": False}
    values["externalDatabase"] = {
        "host": database.host,
        "port": database.port,
        "database": database.name,
        "username": database.user,
        "existingSecret": DATABASE_SECRET,
        "existingSecretPasswordKey": "password",
    }
    return values


@dataclass
class KwokStack:
    cluster: ControlPlane
    namespace: str
    dsn: str
    scenario: e2e.Scenario
    workers: PodRunner
    services: PodRunner
    api: e2e.QueueApi
    apps: kube_client.AppsV1Api
    log_dir: Path

    def deployment(self) -> dict[str, Any]:
        response: Any = self.apps.read_namespaced_deployment(
            e2e.WORKER_DEPLOYMENT, self.namespace, _preload_content=False
        )
        return dict(json.loads(response.data))

    def pool_view(self) -> PoolView:
        deployment = self.deployment()
        status = json.loads((deployment["metadata"].get("annotations") or {}).get(ann.STATUS, "{}"))
        return PoolView(
            replicas=int(deployment["spec"].get("replicas") or 0),
            desired=status.get("desired"),
            processes=self.workers.process_count(),
        )

    def at_zero(self) -> bool:
        return self.pool_view().replicas == 0 and self.workers.process_count() == 0

    def pod_events(self) -> list[tuple[float, str, str]]:
        return list(self.workers.events)

    def logs(self, lines: int = 30) -> str:
        """The controller's and the API's log tails, for a failure message."""
        return "\n".join(
            f"--- {path.name}\n{log_tail(path, lines)}"
            for path in sorted(self.log_dir.glob("*.log"))
            if "worker" not in path.name
        )


@contextlib.asynccontextmanager
async def kwok_stack(
    cluster: ControlPlane,
    namespace: str,
    helm_bin: Path,
    dsn: str,
    tmp_path: Path,
    scenario: e2e.Scenario,
) -> AsyncIterator[KwokStack]:
    """Install, start the processes, and wait until the API answers and the pool is at zero
    (the Deployment starts with one replica; the controller takes it down after the delay)."""
    await e2e.create_runs_table(dsn)
    database = e2e.Database.from_dsn(dsn)
    enforce_restricted(cluster, namespace)
    cluster.kubectl(
        "create", "secret", "generic", DATABASE_SECRET, "-n", namespace,
        f"--from-literal=password={database.password}",
    )  # fmt: skip
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(chart_values(scenario, database)))
    Helm(helm_bin).on(
        cluster, "install", e2e.RELEASE, str(CHART), "--namespace", namespace,
        "--values", str(values_file), "--wait", "--timeout", "5m",
    )  # fmt: skip
    log_dir = tmp_path / "logs"
    apps = kube_client.AppsV1Api(kube_config.new_client_from_config(str(cluster.kubeconfig)))
    api_port = free_port()
    services = PodRunner(
        cluster, namespace, SERVICES_SELECTOR, log_dir=log_dir,
        extra_env={"JOBQUEUE_API_HOST": "127.0.0.1", "JOBQUEUE_API_PORT": str(api_port)},
    )  # fmt: skip
    token = e2e.secret_value(cluster, namespace, e2e.API_TOKEN_SECRET, "token")
    api = e2e.QueueApi(f"http://127.0.0.1:{api_port}", token)
    workers: PodRunner | None = None
    try:
        services.start()
        worker_deployment = cluster.get_json("deployment", e2e.WORKER_DEPLOYMENT, "-n", namespace)
        workers = PodRunner(cluster, namespace, e2e.selector_of(worker_deployment), log_dir=log_dir)
        workers.start()
        stack = KwokStack(cluster, namespace, dsn, scenario, workers, services, api, apps, log_dir)
        await e2e.eventually(api.ready, what="the API to be ready", context=stack.logs)
        await e2e.eventually(
            stack.at_zero, what="the worker pool to be at zero", context=stack.logs
        )
        yield stack
    finally:
        await api.close()
        for runner in (workers, services):
            if runner is not None:
                runner.stop()
