"""The release on the real node: our image for every component, the host's PostgreSQL
(`postgresql.enabled=false`), the migration hook Job; the test reaches the API through its
Service's cluster IP (kube-proxy's rules route the host's own connections too) and watches the
worker pods."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.chart.chart_support import CHART, Helm, enforce_restricted
from tests.e2e import e2e_support as e2e
from tests.e2e import kwok_stack
from tests.fixtures.node import RealNode
from tests.kind.kind_stack import KindStack, settled, watching_workers

IMAGE_REPOSITORY, IMAGE_TAG = "job-queue-e2e", "containers"  # tools/build-node-images.sh
API_SERVICE = f"{e2e.RELEASE}-job-queue-api"
INSTALL_TIMEOUT = "8m"  # within Helm.on's 10-minute bound


def chart_values(scenario: e2e.Scenario, database: e2e.Database) -> dict[str, Any]:
    """The kwok suite's values (the host's database), with our image and its e2e handler."""
    values = kwok_stack.chart_values(scenario, database)
    values["config"]["handlerModules"] = ["e2e_handlers"]
    values["image"] = {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG, "pullPolicy": "Never"}
    return values


@dataclass
class NodeStack(KindStack):
    """The kind suite's view of the release (the pool, its pods, the logs), on the real node."""

    node: RealNode
    helm: Helm

    def logs(self) -> str:
        events = self.cluster.kubectl("get", "events", "-n", self.namespace, check=False)
        return f"{super().logs()}\n--- events\n{events.stdout[-3000:]}\n{self.node.logs(10)}"


@contextlib.asynccontextmanager
async def node_stack(
    node: RealNode, helm_bin: Path, dsn: str, tmp_path: Path, scenario: e2e.Scenario
) -> AsyncIterator[NodeStack]:
    """Install into a fresh restricted namespace (the hook Job migrates), and wait for the API
    to answer through its Service and for the pool to be at zero."""
    cluster = node.plane
    namespace = f"jobqueue-pods-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(namespace)
    enforce_restricted(cluster, namespace)
    database = e2e.Database.from_dsn(dsn)
    cluster.kubectl(
        "create", "secret", "generic", kwok_stack.DATABASE_SECRET, "-n", namespace,
        f"--from-literal=password={database.password}",
    )  # fmt: skip
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(chart_values(scenario, database)))
    helm = Helm(helm_bin)
    api: e2e.QueueApi | None = None
    try:
        started = time.monotonic()
        # No --wait: it would wait for an API that is ready only once the post-install hook has
        # migrated (charts/job-queue/README.md). helm still waits for the hook Job to succeed.
        helm.on(
            cluster, "install", e2e.RELEASE, str(CHART), "--namespace", namespace,
            "--values", str(values_file), "--timeout", INSTALL_TIMEOUT,
        )  # fmt: skip
        print(f"helm install (hook Job done) took {time.monotonic() - started:.1f} s")
        await e2e.create_runs_table(dsn)
        service = cluster.get_json("service", API_SERVICE, "-n", namespace)
        token = e2e.secret_value(cluster, namespace, e2e.API_TOKEN_SECRET, "token")
        api = e2e.QueueApi(f"http://{service['spec']['clusterIP']}:8001", token)
        with watching_workers(cluster, namespace) as (watch, apps):
            stack = NodeStack(cluster, namespace, dsn, scenario, api, apps, watch, node, helm)
            await settled(stack, "the API to answer through its Service")
            yield stack
    finally:
        if api is not None:
            await api.close()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
