"""L4: helm install, upgrade and uninstall on the kwok control plane.

kwok marks pods Running and Ready (and Job pods Succeeded), so `--wait` and the migration hook
complete although no container runs. The namespace enforces the restricted Pod Security
profile, so kube-apiserver itself admits (or rejects) every pod the chart makes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from tests.chart.chart_support import CHART, FULLNAME, RELEASE, Helm, enforce_restricted
from tests.fixtures.kube import ControlPlane
from tests.fixtures.processes import wait_until

pytestmark = pytest.mark.kwok

WORKER = f"{FULLNAME}-worker-default"
# persistence off: kwok has no storage provisioner.
BASE_VALUES = ["--set", "postgresql.persistence.enabled=false"]
# Every namespaced kind the chart can create, and the pods its controllers make.
KINDS = (
    "deployments,statefulsets,replicasets,pods,jobs,services,configmaps,secrets,serviceaccounts,"
    "roles,rolebindings,poddisruptionbudgets,networkpolicies,persistentvolumeclaims,ingresses"
)


def install(helm: Helm, cluster: ControlPlane, namespace: str, *values: str) -> str:
    enforce_restricted(cluster, namespace)
    out = helm.on(
        cluster, "install", RELEASE, str(CHART), "--namespace", namespace,
        "--wait", "--timeout", "5m", *BASE_VALUES, *values,
    )  # fmt: skip
    assert "PodSecurity" not in out.stderr, out.stderr
    return out.stdout + out.stderr


def labelled(cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", KINDS, "-n", namespace, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json"
    )
    return list(json.loads(out.stdout)["items"])


def deployment(cluster: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    return dict(cluster.get_json("deployment", name, "-n", namespace))


def test_install_waits_for_every_component(
    kwok_cluster: ControlPlane, namespace: str, helm: Helm
) -> None:
    install(helm, kwok_cluster, namespace)
    status = json.loads(
        helm.on(kwok_cluster, "status", RELEASE, "-n", namespace, "-o", "json").stdout
    )
    assert status["info"]["status"] == "deployed"
    kinds = {(item["kind"], item["metadata"]["name"]) for item in labelled(kwok_cluster, namespace)}
    for kind, name in (
        ("Deployment", f"{RELEASE}-job-queue-api"),
        ("Deployment", f"{RELEASE}-job-queue-controller"),
        ("Deployment", WORKER),
        ("StatefulSet", f"{RELEASE}-job-queue-postgresql"),
        ("Role", f"{RELEASE}-job-queue-controller"),
    ):
        assert (kind, name) in kinds, f"{kind}/{name} is missing"
    pods = [item for item in labelled(kwok_cluster, namespace) if item["kind"] == "Pod"]
    running = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in pods
        if p["status"]["phase"] == "Running"
    }
    assert {"api", "controller", "worker", "postgresql"} <= running
    # the post-install migration Job ran and, having succeeded, was deleted
    assert not [item for item in labelled(kwok_cluster, namespace) if item["kind"] == "Job"]
    events = kwok_cluster.get_json("events", "-n", namespace)["items"]
    rejected = [e["message"] for e in events if e["reason"] == "FailedCreate"]
    assert rejected == []


def test_upgrade_keeps_the_replicas_the_controller_set(
    kwok_cluster: ControlPlane, namespace: str, helm: Helm
) -> None:
    install(helm, kwok_cluster, namespace)
    # What the controller does: write replicas through the scale subresource.
    kwok_cluster.kubectl("scale", "deployment", WORKER, "-n", namespace, "--replicas=3")
    before = deployment(kwok_cluster, namespace, WORKER)
    assert before["spec"]["replicas"] == 3
    helm.on(
        kwok_cluster, "upgrade", RELEASE, str(CHART), "--namespace", namespace,
        "--wait", "--timeout", "5m", *BASE_VALUES,
        "--set", "config.debug=true", "--set", "workers.default.autoscale.maxReplicas=7",
    )  # fmt: skip
    after = deployment(kwok_cluster, namespace, WORKER)
    assert after["metadata"]["annotations"]["jobqueue.dev/max-replicas"] == "7", (
        "the upgrade applied"
    )
    assert (
        after["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        != before["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    ), "the config change rolls the pods"
    assert after["spec"]["replicas"] == 3, "helm upgrade reset the controller's replica count"
    wait_until(
        lambda: deployment(kwok_cluster, namespace, WORKER)["status"].get("readyReplicas") == 3,
        timeout=120, interval=0.5, what="three ready workers after the upgrade",
    )  # fmt: skip


def manifest_objects(helm: Helm, cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    out = helm.on(cluster, "get", "manifest", RELEASE, "-n", namespace).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def secret_data(objects: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {
        (obj["metadata"]["name"], key): base64.b64decode(value).decode()
        for obj in objects
        if obj["kind"] == "Secret"
        for key, value in (obj.get("data") or {}).items()
    }


def test_generated_secrets_are_made_once_and_kept(
    kwok_cluster: ControlPlane, namespace: str, helm: Helm
) -> None:
    """With cluster access, helm install generates each Secret; an upgrade keeps every value
    (lookup), and no value shows anywhere but in its Secret. A render without cluster access
    refuses instead (test_chart_security)."""
    install(helm, kwok_cluster, namespace)
    first = secret_data(manifest_objects(helm, kwok_cluster, namespace))
    assert set(first) == {
        (f"{FULLNAME}-api-token", "token"),
        (f"{FULLNAME}-api-read-token", "token"),
        (f"{FULLNAME}-api-enqueue-token", "token"),
        (f"{FULLNAME}-postgresql", "password"),
        (f"{FULLNAME}-postgresql", "owner-password"),
        (f"{FULLNAME}-postgresql", "readonly-password"),
        (f"{FULLNAME}-postgresql", "postgres-password"),
    }
    assert len(set(first.values())) == len(first), "each secret has a value of its own"
    helm.on(
        kwok_cluster, "upgrade", RELEASE, str(CHART), "--namespace", namespace,
        "--wait", "--timeout", "5m", *BASE_VALUES, "--set", "config.debug=true",
    )  # fmt: skip
    objects = manifest_objects(helm, kwok_cluster, namespace)
    assert secret_data(objects) == first, "an upgrade replaced a generated secret"
    for obj in objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        for value in first.values():
            assert value not in text, f"a secret value appears in {obj['kind']}"


def test_uninstall_removes_everything(
    kwok_cluster: ControlPlane, namespace: str, helm: Helm
) -> None:
    install(helm, kwok_cluster, namespace, "--set", "networkPolicy.enabled=true")
    assert labelled(kwok_cluster, namespace)
    helm.on(kwok_cluster, "uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "5m")
    wait_until(
        lambda: labelled(kwok_cluster, namespace) == [],
        timeout=120, interval=0.5, what="every labelled object of the release to be gone",
    )  # fmt: skip
    releases = kwok_cluster.kubectl(
        "get", "secrets", "-n", namespace, "-l", "owner=helm", "-o", "name"
    )
    assert releases.stdout.strip() == "", "helm's release records are gone too"
    leftovers = kwok_cluster.get_json(KINDS, "-n", namespace)["items"]
    assert [o["metadata"]["name"] for o in leftovers if o["metadata"].get("finalizers")] == []
