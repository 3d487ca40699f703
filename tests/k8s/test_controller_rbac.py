"""L3: the controller's rights as the chart grants them (its Roles, RoleBindings and admission
policy, rendered with helm and applied to a real kube-apiserver): the real controller scales a
Deployment it manages, writes its status and sets its pods' deletion cost; with the same
ServiceAccount's token, every other change to a Deployment or pod is refused, and the Lease
rights reach no other Lease."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller import annotations as ann
from tests.chart.chart_support import CHART, KUBE_VERSION, SECRETS_VALUES, Helm
from tests.fixtures.kube import ControlPlane
from tests.k8s import harness as h

pytestmark = pytest.mark.k8s

RELEASE = "jq"
ACCOUNT = f"{RELEASE}-job-queue-controller"
KINDS = {
    "ServiceAccount", "Role", "RoleBinding",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}  # fmt: skip


def chart_rbac(helm_bin: Path, namespace: str) -> list[dict[str, Any]]:
    out = Helm(helm_bin).run(
        "template", RELEASE, str(CHART), "--namespace", namespace,
        "--kube-version", KUBE_VERSION, "--values", str(SECRETS_VALUES),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    objects = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    # the admission policy's (cluster-scoped) name starts with the namespace, and may be cut
    return [
        o
        for o in objects
        if o["kind"] in KINDS
        and (o["kind"].startswith("Validating") or "controller" in o["metadata"]["name"])
    ]


def managed_pod(name: str, app: str) -> dict[str, Any]:
    pod = h.pod(name, app)
    pod["metadata"]["labels"][ann.AUTOSCALE_LABEL] = "true"
    return pod


PATHS = {
    "deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "pod": "/api/v1/namespaces/{ns}/pods/{name}",
    "lease": "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
}


@dataclass(frozen=True)
class Answer:
    returncode: int  # 0 for a 2xx, as kubectl's
    stderr: str


def merge(
    plane: ControlPlane, token: str, namespace: str, kind: str, name: str, patch: object
) -> Answer:
    """A merge patch as the controller sends one: no GET first (it has no right to it)."""
    request = urllib.request.Request(
        plane.server + PATHS[kind].format(ns=namespace, name=name),
        data=json.dumps(patch).encode(),
        method="PATCH",
        headers={
            "Content-Type": "application/merge-patch+json",
            "Authorization": f"Bearer {token}",
        },
    )
    context = ssl.create_default_context(cafile=str(plane.pki["ca.crt"]))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30):
            return Answer(0, "")
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode())


def refused(result: Any) -> str:
    assert result.returncode != 0, result.stderr
    assert "forbidden" in result.stderr.lower() or "denied" in result.stderr.lower(), result.stderr
    return str(result.stderr)


async def test_the_charts_rights_reach_only_what_the_controller_manages(
    plane: ControlPlane,
    namespace: str,
    pg_dsn: str,
    controllers: list[h.Controller],
    tmp_path: Path,
    helm_bin: Path,
) -> None:
    cluster_scoped = []
    for obj in chart_rbac(helm_bin, namespace):
        if obj["kind"].startswith("Validating"):
            cluster_scoped.append(f"{obj['kind'].lower()}/{obj['metadata']['name']}")
        plane.apply(obj, None if obj["kind"].startswith("Validating") else namespace)
    try:
        await _rights_reach_only_what_is_managed(plane, namespace, pg_dsn, controllers, tmp_path)
    finally:  # the namespace goes with its test; cluster-scoped objects do not
        plane.kubectl("delete", "--ignore-not-found", *cluster_scoped, check=False)


async def _rights_reach_only_what_is_managed(
    plane: ControlPlane,
    namespace: str,
    pg_dsn: str,
    controllers: list[h.Controller],
    tmp_path: Path,
) -> None:
    token = plane.service_account_token(namespace, ACCOUNT)
    kubeconfig = plane.kubeconfig_for_token(token, tmp_path / "sa.kubeconfig", namespace)
    managed = h.deployment("workers", replicas=4, annotations={ann.SCALE_DOWN_DELAY: "1"})
    managed["spec"]["template"]["metadata"]["labels"][ann.AUTOSCALE_LABEL] = "true"
    plane.apply(managed, namespace)
    plane.apply(h.deployment("bystander", replicas=1, labelled=False), namespace)
    for name in ("workers-a", "workers-b"):
        plane.apply(managed_pod(name, "workers"), namespace)
    plane.apply(h.pod("bystander-pod", "bystander"), namespace)
    plane.apply(
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
         "metadata": {"name": "someone-elses-lease"}, "spec": {"holderIdentity": "them"}},
        namespace,
    )  # fmt: skip

    # the real controller, with only these rights: up, then down with its pods' costs set
    controller = h.start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path,
        JOBQUEUE_CONTROLLER_LEASE_NAME=ACCOUNT,
    )  # fmt: skip
    controllers.append(controller)
    watch = h.Watch(plane, namespace, [controller])
    jobs = await h.enqueue(pg_dsn, "default", 50)
    await watch.replicas("workers", 5, "scale-up under the chart's rights")
    await watch.status("workers", "its status annotation", depth=50)
    await h.cancel(pg_dsn, jobs)
    await watch.replicas("workers", 0, "scale-down under the chart's rights")
    for name in ("workers-a", "workers-b"):
        pod = h.get(plane, namespace, "pod", name)
        assert pod["metadata"]["annotations"][ann.POD_DELETION_COST] == "0", name
    assert h.get(plane, namespace, "lease", ACCOUNT)["spec"]["holderIdentity"]

    # the same token, by hand: nothing but those two annotations, on those objects
    def as_controller(kind: str, name: str, patch: object) -> Any:
        return merge(plane, token, namespace, kind, name, patch)

    status = {"metadata": {"annotations": {ann.STATUS: "{}"}}}
    cost = {"metadata": {"annotations": {ann.POD_DELETION_COST: "7"}}}
    assert as_controller("deployment", "workers", status).returncode == 0
    assert as_controller("pod", "workers-a", cost).returncode == 0
    assert "labelled" in refused(as_controller("deployment", "bystander", status))
    assert "labelled" in refused(as_controller("pod", "bystander-pod", cost))
    refused(as_controller("deployment", "workers", {"metadata": {"annotations": {"x": "1"}}}))
    refused(as_controller("deployment", "workers", {"metadata": {"labels": {"x": "1"}}}))
    image = {"spec": {"template": {"spec": {"containers": [{"name": "worker", "image": "evil"}]}}}}
    refused(as_controller("deployment", "workers", image))
    refused(as_controller("pod", "workers-a", {"metadata": {"annotations": {"x": "1"}}}))
    refused(as_controller("pod", "workers-a", {"metadata": {"labels": {"x": "1"}}}))
    for verb in (("delete", "pod", "workers-a"), ("delete", "deployment", "bystander"),
                 ("get", "secrets"), ("create", "configmap", "x")):  # fmt: skip
        refused(plane.kubectl(*verb, "-n", namespace, kubeconfig=kubeconfig, check=False))
    # the Lease rights name the controller's own Lease
    refused(plane.kubectl("get", "lease", "someone-elses-lease", "-n", namespace,
                          kubeconfig=kubeconfig, check=False))  # fmt: skip
    refused(as_controller("lease", "someone-elses-lease", {"spec": {"holderIdentity": "me"}}))
    assert (
        h.get(plane, namespace, "lease", "someone-elses-lease")["spec"]["holderIdentity"] == "them"
    )
    assert h.replicas(plane, namespace, "bystander") == 1
