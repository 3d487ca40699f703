"""The kind suite's plumbing: finding docker and kind (or skipping), the cluster, the images,
and `kubectl port-forward` to reach the API and PostgreSQL from the test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process
from tests.fixtures.tools import REPO_ROOT, find_binary

IMAGE_TAG = "kind-e2e"
BASE_IMAGE = f"job-queue:{IMAGE_TAG}"
# The base image plus tests/e2e/e2e_handlers.py, importable as `e2e_handlers`.
E2E_IMAGE_REPOSITORY = "job-queue-e2e"
E2E_IMAGE = f"{E2E_IMAGE_REPOSITORY}:{IMAGE_TAG}"
E2E_DOCKERFILE = Path(__file__).with_name("Dockerfile.e2e")
BUILD_TIMEOUT = 1800

# Set to use an existing kind cluster (it is left in place); otherwise the suite makes its own.
CLUSTER_ENV = "JOBQUEUE_KIND_CLUSTER"
KEEP_ENV = "JOBQUEUE_KIND_KEEP"  # 1: do not delete the cluster the suite made
NODE_IMAGE_ENV = "JOBQUEUE_KIND_NODE_IMAGE"  # e.g. kindest/node:v1.33.1


def run(args: list[str], *, timeout: float = 600, input: str | None = None) -> str:
    """Run a command; fail the test with its output if it fails."""
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input)
    if out.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
            f"{out.stderr[-3000:]}",
            pytrace=False,
        )
    return out.stdout


def docker_and_kind() -> tuple[str, str]:
    """docker (with an engine that answers) and kind, or a skip that says what is missing."""
    docker, kind = shutil.which("docker"), shutil.which("kind")
    if docker is None:
        pytest.skip("kind suite: docker is not installed (it builds the image and runs kind)")
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        answered = info.returncode == 0
        why = (info.stderr.strip().splitlines() or ["no answer"])[-1]
    except subprocess.TimeoutExpired:
        answered, why = False, "`docker info` did not answer within 60 s"
    if not answered:
        pytest.skip(f"kind suite: docker is installed but no engine answers `docker info` ({why})")
    if kind is None:
        pytest.skip(
            "kind suite: kind is not installed (https://kind.sigs.k8s.io); tests/containers runs "
            "the same scenario on a real node here"
        )
    return docker, kind


def required_tool(name: str) -> str:
    """helm and kubectl: the ones `make tools` built, else the ones on PATH."""
    found = find_binary(name) or shutil.which(name)
    if found is None:
        pytest.fail(f"kind suite: {name} not found; run `make tools` or put {name} on PATH")
    return str(found)


@dataclass
class KindCluster:
    name: str
    kubeconfig: Path
    kubectl_bin: str
    created: bool  # by this suite (and so deleted by it)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args],
            input=input, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr}")
        return out

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


def start_cluster(kind: str, kubectl: str, directory: Path) -> KindCluster:
    kubeconfig = directory / "kind.kubeconfig"
    existing = os.environ.get(CLUSTER_ENV)
    if existing:
        kubeconfig.write_text(run([kind, "get", "kubeconfig", "--name", existing]))
        return KindCluster(existing, kubeconfig, kubectl, created=False)
    name = f"jobqueue-e2e-{uuid.uuid4().hex[:6]}"
    args = [kind, "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)]
    if os.environ.get(NODE_IMAGE_ENV):
        args += ["--image", os.environ[NODE_IMAGE_ENV]]
    run([*args, "--wait", "300s"], timeout=900)
    return KindCluster(name, kubeconfig, kubectl, created=True)


def delete_cluster(kind: str, cluster: KindCluster) -> None:
    if cluster.created and os.environ.get(KEEP_ENV, "") in ("", "0", "false"):
        subprocess.run([kind, "delete", "cluster", "--name", cluster.name], timeout=600)


def build_and_load_images(docker: str, kind: str, cluster: KindCluster) -> None:
    """`docker build` the project's Dockerfile, add the e2e handlers on top, and load the result
    into the cluster's nodes (pods run it with imagePullPolicy Never)."""
    run([docker, "build", "--tag", BASE_IMAGE, str(REPO_ROOT)], timeout=BUILD_TIMEOUT)
    run(
        [
            docker, "build", "--tag", E2E_IMAGE, "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--file", str(E2E_DOCKERFILE), str(REPO_ROOT / "tests" / "e2e"),
        ],
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    run([kind, "load", "docker-image", E2E_IMAGE, "--name", cluster.name], timeout=BUILD_TIMEOUT)


class PortForward:
    """`kubectl port-forward` from a free local port to a Service, for as long as the test runs."""

    def __init__(self, cluster: KindCluster, namespace: str, service: str, port: int, logs: Path):
        self.local_port = free_port()
        self.log = logs / f"port-forward-{service}.log"
        self.process = start_logged(
            [
                cluster.kubectl_bin, f"--kubeconfig={cluster.kubeconfig}", "port-forward",
                "--namespace", namespace, "--address", "127.0.0.1",
                f"service/{service}", f"{self.local_port}:{port}",
            ],
            self.log,
        )  # fmt: skip
        self._wait_listening()

    def _wait_listening(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"kubectl port-forward exited:\n{log_tail(self.log)}", pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", self.local_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"kubectl port-forward did not listen:\n{log_tail(self.log)}", pytrace=False)

    def stop(self) -> None:
        stop_process(self.process)
