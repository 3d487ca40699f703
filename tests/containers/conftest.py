"""Fixtures of the real-pod suite: the images (built and saved once per machine and input), a
control plane that listens on the host's address, one real node joined to it, and a PostgreSQL
that the pods reach on that address.

It needs root (the kubelet, containerd and the bridge) and what `tools/setup-node.sh` installs
and builds; elsewhere it skips, and under JOBQUEUE_REQUIRE_K8S=1 (CI) it fails instead."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import postgres as pg
from tests.fixtures.kube import ControlPlane
from tests.fixtures.node import CLUSTER_CIDR, NODE_BINARIES, RealNode, host_address
from tests.fixtures.tools import REPO_ROOT, missing, require_binaries

PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
IMAGE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "job-queue/images"
BUILD_TIMEOUT = 2400


def node_images() -> Path:
    """tools/build-node-images.sh: the job-queue image with the e2e handler, and the pause image,
    as one archive (rebuilt only when an input changed)."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "build-node-images.sh"), str(IMAGE_CACHE / "node")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert out.returncode == 0, f"build-node-images.sh failed:\n{out.stderr[-4000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


# module scope: the node goes down after its tests, not at the end of the whole session
@pytest.fixture(scope="module")
def real_node() -> Iterator[RealNode]:
    if os.geteuid() != 0:
        missing("real pods need root (kubelet, containerd, the CNI bridge)")
    if not (Path("/usr/lib/cni/bridge").exists() and shutil.which("iptables")):
        missing("no CNI plugins or iptables: run tools/setup-node.sh")
    binaries = require_binaries(*PLANE_BINARIES, *NODE_BINARIES)
    images = node_images()
    plane = ControlPlane(binaries, address=host_address())
    node: RealNode | None = None
    try:
        plane.start()
        plane.start_controllers()
        node = RealNode(plane, binaries)
        node.start(images)
        yield node
    finally:
        if node is not None:
            node.stop()
        plane.stop()


class HostPostgres(pg.PostgresServer):
    """Listening on the host's address too, and trusting the pod network."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.host = address

    def allow(self, *cidrs: str) -> None:
        with open(self.data / "pg_hba.conf", "a") as hba:
            for cidr in cidrs:
                hba.write(f"host all all {cidr} trust\n")


@pytest.fixture(scope="module")
def host_pg(real_node: RealNode, pg_golden_data: Path) -> Iterator[HostPostgres]:
    server = HostPostgres(real_node.address)
    server.init(golden=pg_golden_data)
    server.allow(CLUSTER_CIDR, f"{real_node.address}/32")
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def node_dsn(host_pg: HostPostgres) -> str:
    """A fresh, unmigrated database: the chart's migration hook makes the schema."""
    name = pg.unique_db_name("n")
    await pg.create_database(host_pg.dsn(), name)
    return host_pg.dsn(name)
