"""KEDA on the L4 control plane, for bench/bench_vs_keda.py: its CRDs (from the pinned KEDA
module), its operator and metrics adapter as local processes (built by
`tools/build-tools.sh --keda`), and the adapter registered as the external metrics APIService.

The apiserver must run with the aggregation layer (ControlPlane(aggregation=True)). There is
no kube-proxy, so the APIService's Service has hand-made Endpoints on this machine's own
address (Endpoints may not name a loopback address) and the apiserver routes to them directly.
The operator's gRPC metrics service and the adapter share one serving pair signed by the
control plane's CA, as the cert Secret would give them in a cluster.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.fixtures.certs import write_serving_pair
from tests.fixtures.kube import ControlPlane
from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process
from tests.fixtures.tools import REPO_ROOT

KEDA_NAMESPACE = "keda"
METRICS_SERVICE = "keda-metrics-apiserver"
API_SERVICE = "v1beta1.external.metrics.k8s.io"
BINARIES = ("keda-operator", "keda-adapter")


def keda_version() -> str:
    text = (REPO_ROOT / "tools" / "versions.env").read_text()
    found = re.search(r"^KEDA_VERSION=(\S+)$", text, re.MULTILINE)
    if not found:
        raise RuntimeError("tools/versions.env pins no KEDA_VERSION")
    return found.group(1)


def crd_files() -> list[Path]:
    """KEDA's CRDs from the module the operator was built from (in Go's module cache)."""
    module = f"github.com/kedacore/keda/v2@{keda_version()}"
    out = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True, text=True, check=True, timeout=600, cwd=REPO_ROOT / "tools",
    )  # fmt: skip
    directory = Path(json.loads(out.stdout)["Dir"]) / "config" / "crd" / "bases"
    return sorted(directory.glob("*.yaml"))


def host_address() -> str:
    """This machine's own non-loopback address (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])


def _api_service_objects(address: str, port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": METRICS_SERVICE, "namespace": KEDA_NAMESPACE},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
    }
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": METRICS_SERVICE, "namespace": KEDA_NAMESPACE},
        "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port}]}],
    }
    api_service = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": API_SERVICE},
        "spec": {
            "group": "external.metrics.k8s.io",
            "version": "v1beta1",
            "service": {"name": METRICS_SERVICE, "namespace": KEDA_NAMESPACE, "port": 443},
            "caBundle": base64.b64encode(ca_bundle).decode(),
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        },
    }
    return [service, endpoints, api_service]


def _available(plane: ControlPlane) -> bool:
    out = plane.kubectl("get", "apiservice", API_SERVICE, "-o", "json", check=False)
    if out.returncode != 0:
        return False
    conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


@contextlib.contextmanager
def keda(plane: ControlPlane, log_dir: Path) -> Iterator[None]:
    """KEDA's operator and adapter running against `plane` until the block ends."""
    for crd in crd_files():
        plane.kubectl("apply", "--server-side", "-f", str(crd))
    plane.create_namespace(KEDA_NAMESPACE)
    address = host_address()
    certs = write_serving_pair(
        log_dir / "keda-certs",
        plane.pki,
        # the aggregator checks the Service's name; the adapter checks "localhost" (its
        # --metrics-service-grpc-authority) on the operator's side
        ["localhost", "127.0.0.1", address, f"{METRICS_SERVICE}.{KEDA_NAMESPACE}.svc"],
    )
    cert_dir = str(certs["ca.crt"].parent)
    grpc_port, adapter_port = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(plane.kubeconfig),
        "POD_NAMESPACE": KEDA_NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
        "WATCH_NAMESPACE": "",
    }
    kubeconfig = str(plane.kubeconfig)
    operator_args = [
        str(plane.bin["keda-operator"]),
        f"--kubeconfig={kubeconfig}",
        f"--metrics-bind-address=127.0.0.1:{free_port()}",
        f"--health-probe-bind-address=127.0.0.1:{free_port()}",
        f"--metrics-service-bind-address=127.0.0.1:{grpc_port}",
        f"--cert-dir={cert_dir}",
        f"--ca-dir={cert_dir}",
        "--enable-cert-rotation=false",
        "--enable-webhook-patching=false",
        "--enable-apiservice-patching=false",
        "--zap-log-level=info",
    ]
    adapter_args = [
        str(plane.bin["keda-adapter"]),
        f"--kubeconfig={kubeconfig}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--secure-port={adapter_port}",
        "--bind-address=0.0.0.0",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={certs['tls.crt']}",
        f"--tls-private-key-file={certs['tls.key']}",
        f"--metrics-service-address=127.0.0.1:{grpc_port}",
        "--metrics-service-grpc-authority=localhost",
        f"--port={free_port()}",
        "--zap-log-level=info",
    ]
    processes = {
        "keda-operator": start_logged(operator_args, log_dir / "keda-operator.log", env=env),
        "keda-adapter": start_logged(adapter_args, log_dir / "keda-adapter.log", env=env),
    }
    try:
        for manifest in _api_service_objects(address, adapter_port, certs["ca.crt"].read_bytes()):
            plane.apply(manifest)
        deadline = time.monotonic() + 180
        while not _available(plane):
            for name, proc in processes.items():
                if proc.poll() is not None:
                    log = log_tail(log_dir / f"{name}.log", 40)
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {name}\n{log_tail(log_dir / f'{name}.log', 30)}" for name in processes
                )
                raise RuntimeError(
                    f"the external metrics APIService never became Available\n{logs}"
                )
            time.sleep(1)
        yield
    finally:
        for proc in processes.values():
            stop_process(proc)


def scaled_object(
    name: str, queue: str, max_replicas: int, jobs_per_replica: int, *, fastest: bool
) -> dict[str, Any]:
    """A ScaledObject with the postgresql trigger on the query KEDA's docs suggest (a ceil of
    the count of waiting and running rows over the per-replica share, target 1); at KEDA's
    defaults, or at its fastest documented settings."""
    query = (
        f"SELECT CEIL(COUNT(*)::decimal / {jobs_per_replica}) FROM jobs "
        f"WHERE queue_name = '{queue}' AND status IN ('pending', 'running')"
    )
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": name},
        "minReplicaCount": 0,
        "maxReplicaCount": max_replicas,
        "triggers": [
            {
                "type": "postgresql",
                "metadata": {
                    "connectionFromEnv": "DB_URL",
                    "query": query,
                    "targetQueryValue": "1",
                },
            }
        ],
    }
    if fastest:
        immediate = {"stabilizationWindowSeconds": 0}
        spec["pollingInterval"] = 1
        spec["cooldownPeriod"] = 1
        spec["advanced"] = {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleUp": {
                        **immediate,
                        "policies": [{"type": "Percent", "value": 1000, "periodSeconds": 1}],
                    },
                    "scaleDown": {
                        **immediate,
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
                    },
                }
            }
        }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": spec,
    }
