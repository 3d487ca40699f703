"""L5, the kind suite: the same end-to-end scenario as the L4 test, on a real cluster.

It creates a kind cluster, `docker build`s the image (plus the e2e handler on top) and loads it
into the nodes, `helm install`s the chart with the bundled PostgreSQL, and drives the scenario
through `kubectl port-forward`. Without docker (and an engine answering `docker info`) or kind
it skips, saying which is missing. See tests/kind/README.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import e2e_support as e2e
from tests.e2e.scenario import check_deletion_order, check_scaling, run_burst
from tests.kind.kind_stack import kind_stack, worker_exit_problems
from tests.kind.kind_support import (
    KindCluster,
    build_and_load_images,
    delete_cluster,
    docker_and_kind,
    required_tool,
    start_cluster,
)

pytestmark = pytest.mark.kind

SCENARIO = e2e.Scenario()


@pytest.fixture(scope="module")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    docker, kind = docker_and_kind()  # skips here when either is missing
    kubectl = required_tool("kubectl")
    required_tool("helm")
    cluster = start_cluster(kind, kubectl, tmp_path_factory.mktemp("kind"))
    try:
        build_and_load_images(docker, kind, cluster)
        yield cluster
    finally:
        delete_cluster(kind, cluster)


async def test_burst_on_kind_scales_from_zero_and_back_running_every_job_once(
    kind_cluster: KindCluster, tmp_path: Path
) -> None:
    async with kind_stack(kind_cluster, tmp_path, SCENARIO) as stack:
        job_ids, timeline = await run_burst(stack, "kind", [tmp_path])
        assert await e2e.ledger_problems(stack.dsn, job_ids) == []
        check_scaling(stack, timeline)
        check_deletion_order(stack.workers.history, SCENARIO.scale_down_delay)
        # scale-down drained every worker: exit 0 on SIGTERM, no SIGKILL after the grace period
        assert worker_exit_problems(stack.workers.history) == []
