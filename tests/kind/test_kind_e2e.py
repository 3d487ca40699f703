"""L5, the kind suite: the end-to-end scenario on a kind cluster, with the chart's bundled
PostgreSQL.

The module's cluster is made with images built here (tools/build-kind-images.sh: kind, its node
image from our Kubernetes binaries, PostgreSQL from Debian's package), or with kind's published
node image when JOBQUEUE_KIND_NODE_IMAGE names one. Our image is loaded with `kind load
docker-image`. Each test `helm install`s the chart into its own restricted namespace: the
PostgreSQL StatefulSet with its headless Service, probes and a PVC on kind's local-path storage,
the migration hook Job, the API, the controller and one autoscaled worker pool. Then a 2,000-job
burst through the API:
- the controller scales 0 -> 4 -> 0 and every job runs exactly once;
- the busiest worker is deleted mid-burst: it drains, and no job runs twice;
- `helm upgrade` to another image tag mid-burst: every pod is replaced, and no job is lost.
Without a Docker engine (and no way to start one) it skips, and fails under
JOBQUEUE_REQUIRE_K8S=1. Deadlines only bound a hang; the timelines are printed, never asserted.
See tests/kind/README.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.chart.chart_support import CHART, chart_values
from tests.e2e import e2e_support as e2e
from tests.e2e.real_pods import delete_busiest, print_timeline, terminations
from tests.e2e.scenario import check_deletion_order, check_scaling, completed_at_least, run_burst
from tests.fixtures.report import report
from tests.kind.kind_stack import POSTGRES_SERVICE, KindStack, kind_stack
from tests.kind.kind_support import (
    E2E_IMAGE_REPOSITORY,
    UPGRADE_TAG,
    KindCluster,
    KindImages,
    build_and_load_images,
    delete_cluster,
    docker_engine,
    kind_images,
    required_tool,
    run,
    start_cluster,
)

# The first test's setup builds the images and the cluster: cold, that is most of an hour on
# a 2-core machine (warm, under two minutes). The scenarios' own deadlines bound a hang.
pytestmark = [pytest.mark.kind, pytest.mark.timeout(3600)]

SCENARIO = e2e.Scenario()
MID_BURST = SCENARIO.total_jobs // 4
# The upgrade's burst runs longer (about a minute, rollout included): new workers start while it
# drains. With 50 ms jobs it could drain (14 s) before helm (8 s, its hook included, from a
# quarter of the burst) had rolled the worker Deployment, and no new-tag pod was ever made.
UPGRADE_SCENARIO = e2e.Scenario(job_seconds=0.4)


@pytest.fixture(scope="module")
def kind_setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[KindCluster, KindImages]]:
    directory = tmp_path_factory.mktemp("kind")
    kubectl = required_tool("kubectl")
    required_tool("helm")
    with docker_engine(directory) as docker:  # skips (or fails) here when there is none
        started = time.monotonic()
        images = kind_images(docker)
        report(f"kind images ready in {time.monotonic() - started:.0f} s")
        cluster = start_cluster(images, kubectl, directory)
        try:
            started = time.monotonic()
            build_and_load_images(docker, images, cluster)
            report(f"our images built and loaded in {time.monotonic() - started:.0f} s")
            yield cluster, images
        finally:
            delete_cluster(images.kind, docker, cluster)


def check_bundled_database(stack: KindStack) -> None:
    """The StatefulSet's pod ran ready behind its headless Service, on a bound PVC that kind's
    local-path provisioner made."""
    namespace = stack.namespace
    statefulset = stack.cluster.get_json("statefulset", POSTGRES_SERVICE, "-n", namespace)
    assert statefulset["status"].get("readyReplicas") == 1, statefulset["status"]
    headless = stack.cluster.get_json("service", f"{POSTGRES_SERVICE}-headless", "-n", namespace)
    assert headless["spec"]["clusterIP"] == "None"
    (claim,) = stack.cluster.get_json("pvc", "-n", namespace)["items"]
    assert claim["status"]["phase"] == "Bound", claim["status"]
    volume = stack.cluster.get_json("pv", claim["spec"]["volumeName"])
    assert volume["spec"]["storageClassName"] == "standard", volume["spec"]
    assert "local" in volume["spec"] or "hostPath" in volume["spec"], volume["spec"]


ROLE_RIGHTS = """
SELECT r.rolname, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication
FROM pg_roles AS r WHERE r.rolname = ANY($1::text[]) ORDER BY r.rolname"""
OWNERS = """
SELECT current_user,
       has_schema_privilege('public', 'CREATE'),
       (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
       (SELECT tableowner FROM pg_tables WHERE tablename = 'jobs'),
       (SELECT tableowner FROM pg_tables WHERE tablename = 'e2e_runs')"""


async def check_database_roles(stack: KindStack) -> None:
    """The image ran the chart's init script (postgresql.auth.separateRoles): three roles, none
    privileged; the owner owns the database and the migrated schema; the workers' role, which
    the test reads the ledger as, may not create tables."""
    auth = chart_values()["postgresql"]["auth"]
    names = sorted([auth["username"], auth["ownerUsername"], auth["readonlyUsername"]])
    conn = await asyncpg.connect(stack.dsn)
    try:
        roles = [tuple(row) for row in await conn.fetch(ROLE_RIGHTS, names)]
        owners = tuple(await conn.fetchrow(OWNERS) or ())
    finally:
        await conn.close()
    assert roles == [(name, False) for name in names], roles
    owner = auth["ownerUsername"]
    assert owners == (auth["username"], False, owner, owner, owner), owners


async def test_burst_on_kind_scales_from_zero_and_back_running_every_job_once(
    kind_setup: tuple[KindCluster, KindImages], tmp_path: Path
) -> None:
    cluster, images = kind_setup
    async with kind_stack(cluster, images, tmp_path, SCENARIO) as stack:
        check_bundled_database(stack)
        await check_database_roles(stack)
        job_ids, timeline = await run_burst(stack, "kind", [tmp_path])
        await print_timeline(stack, timeline, "normal", "kind")
        assert await e2e.ledger_problems(stack.dsn, job_ids) == []
        check_scaling(stack, timeline)
        check_deletion_order(stack.workers.history, SCENARIO.scale_down_delay)
        # scale-down drained every worker: exit 0 on SIGTERM, no SIGKILL after the grace period
        assert stack.exit_problems(timeline.started_wall) == ""


async def test_busy_pod_deleted_mid_burst_on_kind_runs_no_job_twice(
    kind_setup: tuple[KindCluster, KindImages], tmp_path: Path
) -> None:
    cluster, images = kind_setup
    async with kind_stack(cluster, images, tmp_path, SCENARIO) as stack:
        deleted: list[tuple[str, int]] = []
        job_ids, timeline = await run_burst(
            stack, "kind-delete", [tmp_path],
            during=lambda: delete_busiest(stack, MID_BURST, deleted),
        )  # fmt: skip
        await print_timeline(stack, timeline, "busy pod deleted", "kind")
        report(f"kind: deleted {deleted} mid-burst")
        # drained, not rescued: every job one attempt, one run, no lease error
        assert await e2e.ledger_problems(stack.dsn, job_ids) == []
        ((name, _),) = deleted
        ends = terminations(stack, name)
        assert ends and all(code == 0 for code in ends), f"{name} ended with {ends}"
        assert stack.exit_problems(timeline.started_wall) == ""


async def test_helm_upgrade_to_a_new_image_tag_mid_burst_loses_no_job(
    kind_setup: tuple[KindCluster, KindImages], tmp_path: Path
) -> None:
    cluster, images = kind_setup
    async with kind_stack(cluster, images, tmp_path, UPGRADE_SCENARIO) as stack:
        upgraded: list[float] = []

        async def upgrade() -> None:
            await e2e.eventually(
                lambda: completed_at_least(stack.dsn, MID_BURST),
                what=f"{MID_BURST} jobs completed", context=stack.logs,
            )  # fmt: skip
            started = time.monotonic()
            # the pre-upgrade hook migrates first; then every Deployment rolls to the new tag
            run(
                [
                    required_tool("helm"), "--kubeconfig", str(cluster.kubeconfig), "upgrade",
                    e2e.RELEASE, str(CHART), "--namespace", stack.namespace,
                    "--reuse-values", "--set", f"image.tag={UPGRADE_TAG}", "--timeout", "10m",
                ],
                timeout=700,
            )  # fmt: skip
            upgraded.append(time.monotonic() - started)

        job_ids, timeline = await run_burst(stack, "kind-upgrade", [tmp_path], during=upgrade)
        await print_timeline(stack, timeline, "helm upgrade", "kind")
        report(f"kind: helm upgrade mid-burst took {upgraded[0]:.1f} s")
        # every job completed exactly once: none lost, none run twice by old and new pods
        assert await e2e.ledger_problems(stack.dsn, job_ids) == []
        new_image = f"{E2E_IMAGE_REPOSITORY}:{UPGRADE_TAG}"
        for component in ("api", "controller"):
            name = f"{e2e.RELEASE}-job-queue-{component}"
            # the rollout may still be under way when the burst has drained: wait for it
            cluster.kubectl(
                "rollout", "status", f"deployment/{name}", "-n", stack.namespace,
                "--timeout=300s", timeout=330,
            )  # fmt: skip
            deployment = cluster.get_json("deployment", name, "-n", stack.namespace)
            containers = deployment["spec"]["template"]["spec"]["containers"]
            assert [c["image"] for c in containers] == [new_image], containers
        worker_images = {
            c["image"]
            for at, _, pod in stack.workers.history
            if at >= timeline.started_wall
            for c in pod["spec"]["containers"]
        }
        assert new_image in worker_images, worker_images
        assert stack.exit_problems(timeline.started_wall) == ""
