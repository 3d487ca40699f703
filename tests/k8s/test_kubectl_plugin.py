"""L3: `kubectl jobqueue status|events` read what the real controller wrote on a real
kube-apiserver: the status annotation, and the ScaledUp Event."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller import annotations as ann
from tests.fixtures.kube import ControlPlane
from tests.k8s import harness as h

pytestmark = pytest.mark.k8s

PLUGIN_DIR = Path(sys.executable).parent  # where the venv put the kubectl-jobqueue script


def plugin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.kubectl_plugin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def table(output: str) -> list[dict[str, str]]:
    """kubectl-style columns into dicts (headers may hold one space, e.g. LAST SCALE)."""
    lines = output.strip().splitlines()
    header = lines[0]
    starts = [0] + [
        i for i in range(1, len(header)) if header[i] != " " and header[i - 2 : i] == "  "
    ]
    bounds = [*starts[1:], None]
    names = [header[s:e].strip() for s, e in zip(starts, bounds, strict=True)]
    return [
        {name: line[s:e].strip() for name, s, e in zip(names, starts, bounds, strict=True)}
        for line in lines[1:]
    ]


@pytest.fixture
def other_namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"plugin-other-{uuid.uuid4().hex[:6]}"
    control_plane.create_namespace(name)
    try:
        yield name
    finally:
        control_plane.delete_namespace(name)


def ready_replicas(plane: ControlPlane, namespace: str, name: str) -> int:
    found = plane.get_json("deployment", name, "-n", namespace)
    return int(found.get("status", {}).get("readyReplicas", 0))


async def test_status_and_events_show_what_the_controller_wrote(
    plane, namespace, other_namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    config = {ann.QUEUES: "plugin", ann.MAX_REPLICAS: "5", ann.JOBS_PER_REPLICA: "10"}
    plane.apply(h.deployment("mailers", annotations=config), namespace)
    plane.apply(h.deployment("plain", labelled=False), namespace)  # not autoscaled: not listed
    controller = h.start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path
    )
    controllers.append(controller)
    await h.enqueue(pg_dsn, "plugin", 25)

    def settled() -> dict[str, Any] | None:
        shown = h.status(plane, namespace, "mailers")
        return shown if (shown.get("actual"), shown.get("reason")) == (3, "steady") else None

    written = await h.eventually(
        settled,
        what="the controller's steady status after scaling to 3",
        controllers=[controller],
    )
    assert written is not None
    # A Deployment elsewhere, its status annotation in the controller's exact JSON shape.
    elsewhere = {**written, "depth": 0, "running": 2, "desired": 1, "actual": 1}
    elsewhere["reason"] = "scale-down-delayed"
    plane.apply(
        h.deployment(
            "reports",
            replicas=1,
            annotations={ann.QUEUES: "reports", ann.STATUS: json.dumps(elsewhere)},
        ),
        other_namespace,
    )
    admin = ["--kubeconfig", str(plane.kubeconfig)]
    # READY comes from the Deployment's status: pods become ready only where the session also
    # runs kube-controller-manager and kwok (L4); then wait until they all are.
    pods_run = plane.workloads_started
    if pods_run:
        for name, where, count in (("mailers", namespace, 3), ("reports", other_namespace, 1)):
            await h.eventually(
                lambda name=name, where=where, count=count: (
                    ready_replicas(plane, where, name) == count
                ),
                what=f"{count} ready pods of {name}",
            )

    shown = plugin("status", "-n", namespace, *admin)
    assert shown.returncode == 0, shown.stderr
    (row,) = table(shown.stdout)
    assert row["NAME"] == "mailers" and row["QUEUES"] == "plugin"
    assert (row["DEPTH"], row["DESIRED"], row["ACTUAL"]) == ("25", "3", "3")
    assert row["RUNNING"] == "0" and row["READY"] == ("3/3" if pods_run else "0/3")
    assert row["REASON"] == "steady" and row["LAST SCALE"].endswith("s")
    assert "NAMESPACE" not in shown.stdout.splitlines()[0]

    as_json = json.loads(plugin("status", "-n", namespace, "-o", "json", *admin).stdout)
    assert as_json[0]["last_scale_time"] == written["lastScaleTime"]
    assert (as_json[0]["min_replicas"], as_json[0]["max_replicas"]) == (0, 5)

    everywhere = plugin("status", "-A", *admin)
    assert everywhere.returncode == 0, everywhere.stderr
    rows = {(r["NAMESPACE"], r["NAME"]): r for r in table(everywhere.stdout)}
    assert rows[(namespace, "mailers")]["ACTUAL"] == "3"
    other = rows[(other_namespace, "reports")]
    expected_other = ("2", "scale-down-delayed", "1/1" if pods_run else "0/1")
    assert (other["RUNNING"], other["REASON"], other["READY"]) == expected_other
    assert (namespace, "plain") not in rows

    events = plugin("events", "-n", namespace, *admin)
    assert events.returncode == 0, events.stderr
    first, event = table(events.stdout)  # from zero, one replica first (cold-start)
    assert first["REASON"] == "ScaledUp" and "from 0 to 1" in first["MESSAGE"]
    assert event["REASON"] == "ScaledUp" and event["OBJECT"] == "deployment/mailers"
    assert "from 1 to 3" in event["MESSAGE"] and event["TYPE"] == "Normal"
    assert "No scaling events" in plugin("events", "-n", other_namespace, *admin).stdout


async def test_flags_before_the_command_context_and_kubectl_discovery_by_kubectl(
    plane, namespace, tmp_path
) -> None:
    status: dict[str, Any] = {
        "depth": 7,
        "running": 1,
        "oldestReadySeconds": 3,
        "desired": 1,
        "actual": 1,
    }
    status |= {"lastScaleTime": "2024-01-01T00:00:00Z", "reason": "steady"}
    plane.apply(
        h.deployment("api-jobs", replicas=1, annotations={ann.STATUS: json.dumps(status)}),
        namespace,
    )
    # KUBECONFIG with the namespace in its context: no -n needed, as with kubectl
    # (the built-in `view` ClusterRole is empty without kube-controller-manager's aggregation)
    account = f"system:serviceaccount:{namespace}:default"
    plane.kubectl(
        "create",
        "role",
        "deployment-reader",
        "--verb=get,list",
        "--resource=deployments",
        "-n",
        namespace,
    )
    plane.kubectl(
        "create",
        "rolebinding",
        "deployment-reader",
        "--role=deployment-reader",
        f"--user={account}",
        "-n",
        namespace,
    )
    await h.eventually(
        lambda: (
            plane.kubectl(
                "auth",
                "can-i",
                "list",
                "deployments",
                f"--as={account}",
                "-n",
                namespace,
                check=False,
            ).stdout.strip()
            == "yes"
        ),
        what="the RoleBinding to take effect",
    )
    scoped = plane.kubeconfig_for_token(
        plane.service_account_token(namespace, "default"), tmp_path / "scoped.kubeconfig", namespace
    )
    by_env = plugin("status", "-o", "wide", env={"KUBECONFIG": str(scoped)})
    assert by_env.returncode == 0, by_env.stderr
    (row,) = table(by_env.stdout)
    assert (row["NAME"], row["DEPTH"], row["OLDEST READY"]) == ("api-jobs", "7", "3s")
    assert (row["MIN"], row["MAX"]) == ("0", "10")

    before = plugin("-n", namespace, "--kubeconfig", str(plane.kubeconfig), "status")
    assert [r["NAME"] for r in table(before.stdout)] == ["api-jobs"]

    # RBAC limits the scoped account to its namespace: -A is refused, and says so
    refused = plugin("status", "-A", env={"KUBECONFIG": str(scoped)})
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "cannot list deployments in all namespaces" in refused.stderr

    missing = plugin("status", "--context", "nope", env={"KUBECONFIG": str(scoped)})
    assert (
        missing.returncode == 1 and "nope" in missing.stderr and "Traceback" not in missing.stderr
    )

    # kubectl itself finds the plugin on PATH
    found = await asyncio.to_thread(
        subprocess.run,
        [str(plane.bin["kubectl"]), "jobqueue", "status", "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PATH": f"{PLUGIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(plane.kubeconfig),
        },
    )
    assert found.returncode == 0, found.stderr
    assert "api-jobs" in found.stdout


def test_unreachable_api_server_is_one_line(tmp_path) -> None:
    from tests.fixtures.processes import free_port

    config = tmp_path / "dead.kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "dead", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}
                ],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
                "current-context": "dead",
            }
        )
    )
    result = plugin("status", "--kubeconfig", str(config))
    assert result.returncode == 1
    assert "cannot reach the Kubernetes API at https://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
