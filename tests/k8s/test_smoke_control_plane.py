"""The control-plane fixtures work: kubectl against the apiserver, and pods on kwok."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.kube import KWOK_NODE, ControlPlane
from tests.fixtures.processes import wait_until


def test_kubectl_get_works(control_plane: ControlPlane, namespace: str) -> None:
    out = control_plane.kubectl("get", "namespace", namespace, "-o", "json")
    assert json.loads(out.stdout)["metadata"]["name"] == namespace
    version = control_plane.kubectl("version", "-o", "json")
    server = json.loads(version.stdout)["serverVersion"]
    from tests.fixtures.tools import REPO_ROOT

    pinned = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "tools/versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert server["gitVersion"] == pinned["KUBERNETES_VERSION"]


def test_rbac_is_enforced(control_plane: ControlPlane, namespace: str, tmp_path) -> None:
    control_plane.kubectl("create", "serviceaccount", "nobody-sa", "-n", namespace)
    token = control_plane.service_account_token(namespace, "nobody-sa")
    kubeconfig = control_plane.kubeconfig_for_token(token, tmp_path / "sa.kubeconfig", namespace)
    denied = control_plane.kubectl(
        "get", "deployments", "-n", namespace, kubeconfig=kubeconfig, check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


@pytest.mark.kwok
def test_deployment_gets_running_pods_on_kwok(kwok_cluster: ControlPlane, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "smoke"}},
            "template": {
                "metadata": {"labels": {"app": "smoke"}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/smoke:1"}]},
            },
        },
    }
    kwok_cluster.apply(deployment)

    def replica_set_made() -> bool:
        items = kwok_cluster.get_json("replicasets", "-n", namespace)["items"]
        return any(rs["metadata"]["ownerReferences"][0]["name"] == "smoke" for rs in items)

    wait_until(replica_set_made, timeout=60, what="a ReplicaSet from kube-controller-manager")

    def pods_running() -> bool:
        pods = kwok_cluster.get_json("pods", "-n", namespace, "-l", "app=smoke")["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return len(running) == 2

    wait_until(pods_running, timeout=90, what="2 pods Running on the kwok node")
    pods = kwok_cluster.get_json("pods", "-n", namespace, "-l", "app=smoke")["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {KWOK_NODE}
