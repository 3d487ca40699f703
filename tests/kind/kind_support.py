"""The kind suite's plumbing: a Docker engine (started here as root when none answers), the
images (built here with no registry, or kind's published node image), the cluster, and
`kubectl port-forward` to reach the API and PostgreSQL from the test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process
from tests.fixtures.report import report
from tests.fixtures.tools import REPO_ROOT, find_binary, missing

IMAGE_TAG = "kind-e2e"
UPGRADE_TAG = "kind-e2e-upgrade"  # the same image under a new tag, for `helm upgrade`
BASE_IMAGE = f"job-queue:{IMAGE_TAG}"
# The base image plus tests/e2e/e2e_handlers.py, importable as `e2e_handlers`.
E2E_IMAGE_REPOSITORY = "job-queue-e2e"
E2E_IMAGE = f"{E2E_IMAGE_REPOSITORY}:{IMAGE_TAG}"
E2E_DOCKERFILE = Path(__file__).with_name("Dockerfile.e2e")
CNI_CONFIG = Path(__file__).with_name("cni") / "10-bridge.conflist"
BUILD_TIMEOUT = 3600

# Set to use an existing kind cluster (it is left in place); otherwise the suite makes its own.
CLUSTER_ENV = "JOBQUEUE_KIND_CLUSTER"
KEEP_ENV = "JOBQUEUE_KIND_KEEP"  # 1: do not delete the cluster the suite made
# A published node image (e.g. kindest/node:v1.35.0): then kind, the node image, PostgreSQL
# and the image's Python base come from registries, as on a laptop.
NODE_IMAGE_ENV = "JOBQUEUE_KIND_NODE_IMAGE"


def run(
    args: list[str],
    *,
    timeout: float = 600,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command; fail the test with its output if it fails."""
    out = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, input=input, env=env
    )
    if out.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
            f"{out.stderr[-3000:]}",
            pytrace=False,
        )
    return out.stdout


def engine_answers(docker: str) -> tuple[bool, str]:
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return False, "`docker info` did not answer within 60 s"
    return info.returncode == 0, (info.stderr.strip().splitlines() or ["no answer"])[-1]


@contextmanager
def docker_engine(logs: Path) -> Iterator[str]:
    """The docker CLI with an engine that answers: the running one, or (as root, with Debian's
    docker.io installed) a dockerd started here by tools/dockerd.sh and stopped on the way out:
    no iptables rules of its own, so nothing is left on the host for the real-node suite."""
    docker = shutil.which("docker")
    if docker is None:
        missing("kind suite: docker is not installed (tools/setup-node.sh installs docker.io)")
    assert docker is not None
    answered, why = engine_answers(docker)
    if answered:
        yield docker
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        missing(f"kind suite: no Docker engine answers `docker info` ({why}), and none can be "
                "started here (needs root and dockerd)")  # fmt: skip
    log = logs / "dockerd.log"
    process = start_logged(["bash", str(REPO_ROOT / "tools" / "dockerd.sh")], log)
    try:
        deadline = time.monotonic() + 90
        while not engine_answers(docker)[0]:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start:\n{log_tail(log)}", pytrace=False)
            time.sleep(1)
        yield docker
    finally:
        stop_process(process, grace=60)


def required_tool(name: str) -> str:
    """helm and kubectl: the ones `make tools` built, else the ones on PATH."""
    found = find_binary(name) or shutil.which(name)
    if found is None:
        missing(f"kind suite: {name} not found; run `make tools` or put {name} on PATH")
    return str(found)


@dataclass
class KindImages:
    """What the cluster runs: kind itself, the node image, and PostgreSQL's image (None: the
    chart's default, pulled from a registry)."""

    kind: str
    node_image: str | None
    postgres_image: str | None

    @property
    def built_here(self) -> bool:
        return self.postgres_image is not None


def kind_images(docker: str) -> KindImages:
    """With JOBQUEUE_KIND_NODE_IMAGE: kind from PATH and that node image. Otherwise everything
    is built here by tools/build-kind-images.sh (cached by its inputs)."""
    published = os.environ.get(NODE_IMAGE_ENV)
    if published:
        kind = shutil.which("kind") or find_binary("kind")
        if kind is None:
            missing("kind suite: kind is not installed (https://kind.sigs.k8s.io)")
        return KindImages(str(kind), published, None)
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "build-kind-images.sh")],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.fail(f"tools/build-kind-images.sh failed:\n{out.stderr[-6000:]}", pytrace=False)
    print(out.stderr[-2000:])
    # each image's build time (root file systems, kind's node image, PostgreSQL), or "all cached"
    timings = [
        line for line in out.stderr.splitlines() if line.startswith("build-kind-images: timings:")
    ]
    report(
        timings[-1].removeprefix("build-kind-images: ") if timings else "kind images: no timings"
    )
    built = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return KindImages(built["KIND"], built["KIND_NODE_IMAGE"], built["POSTGRES_IMAGE"])


def cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def cluster_config(images: KindImages) -> dict[str, Any]:
    """One control-plane node. On a cgroup v1 host, the kubelet and containerd use cgroupfs,
    as on the real node (Kubernetes 1.35 refuses cgroup v1 unless told otherwise). Built here,
    the node has no kindnetd: a bridge network from tests/kind/cni (one node needs no routes)."""
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane"}],
    }
    if cgroup_v1():
        config["containerdConfigPatches"] = [
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
            "  SystemdCgroup = false\n"
        ]
        config["kubeadmConfigPatches"] = [
            "kind: KubeletConfiguration\ncgroupDriver: cgroupfs\nfailCgroupV1: false\n"
        ]
    if images.built_here:
        config["networking"] = {"disableDefaultCNI": True}
        config["nodes"][0]["extraMounts"] = [
            {
                "hostPath": str(CNI_CONFIG),
                "containerPath": f"/etc/cni/net.d/{CNI_CONFIG.name}",
                "readOnly": True,
            }
        ]
    return config


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


def start_cluster(images: KindImages, kubectl: str, directory: Path) -> KindCluster:
    kind = images.kind
    kubeconfig = directory / "kind.kubeconfig"
    existing = os.environ.get(CLUSTER_ENV)
    if existing:
        kubeconfig.write_text(run([kind, "get", "kubeconfig", "--name", existing]))
        return KindCluster(existing, kubeconfig, kubectl, created=False)
    name = f"jobqueue-e2e-{uuid.uuid4().hex[:6]}"
    config = directory / "kind-config.yaml"
    config.write_text(yaml.safe_dump(cluster_config(images)))
    args = [kind, "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig),
            "--config", str(config), "--wait", "300s", "--retain"]  # fmt: skip
    if images.node_image:
        args += ["--image", images.node_image]
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        logs = directory / "kind-logs"
        subprocess.run([kind, "export", "logs", str(logs), "--name", name], timeout=300)
        subprocess.run([kind, "delete", "cluster", "--name", name], timeout=600)
        pytest.fail(f"kind create cluster failed (logs in {logs}):\n{out.stderr[-4000:]}",
                    pytrace=False)  # fmt: skip
    report(f"kind create cluster took {time.monotonic() - started:.1f} s")
    return KindCluster(name, kubeconfig, kubectl, created=True)


def delete_cluster(kind: str, docker: str, cluster: KindCluster) -> None:
    if cluster.created and os.environ.get(KEEP_ENV, "") in ("", "0", "false"):
        subprocess.run([kind, "delete", "cluster", "--name", cluster.name], timeout=600)
        # kind's network (a bridge) goes too, unless another cluster still uses it
        subprocess.run([docker, "network", "rm", "kind"], capture_output=True, timeout=60)


def build_and_load_images(docker: str, images: KindImages, cluster: KindCluster) -> None:
    """Our image (tools/build-image.sh here, or a plain `docker build` with a registry), the e2e
    handlers on top, and PostgreSQL when built here: loaded into the nodes with `kind load
    docker-image` (pods run them with imagePullPolicy Never)."""
    if images.built_here:
        build = ["bash", str(REPO_ROOT / "tools" / "build-image.sh")]
    else:
        build = [docker, "build", "--tag", BASE_IMAGE, str(REPO_ROOT)]
    started = time.monotonic()
    run(build, timeout=BUILD_TIMEOUT, env={**os.environ, "JOBQUEUE_IMAGE": BASE_IMAGE})
    report(f"our image ({BASE_IMAGE}) built in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    run(
        [
            docker, "build", "--network", "host", "--tag", E2E_IMAGE,
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--file", str(E2E_DOCKERFILE), str(REPO_ROOT / "tests" / "e2e"),
        ],
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    report(f"the e2e image ({E2E_IMAGE}) built in {time.monotonic() - started:.1f} s")
    run([docker, "tag", E2E_IMAGE, f"{E2E_IMAGE_REPOSITORY}:{UPGRADE_TAG}"])
    load = [E2E_IMAGE, f"{E2E_IMAGE_REPOSITORY}:{UPGRADE_TAG}"]
    if images.postgres_image:
        load.append(images.postgres_image)
    started = time.monotonic()
    run([images.kind, "load", "docker-image", *load, "--name", cluster.name], timeout=BUILD_TIMEOUT)
    report(f"kind load docker-image ({len(load)} images) took {time.monotonic() - started:.1f} s")


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
