"""L1: what `helm template` renders for worker pools, labels, the image, settings,
migrations and the optional extras."""

from __future__ import annotations

from typing import Any

import yaml

from controller.annotations import parse
from tests.chart.chart_support import (
    FULLNAME,
    RELEASE,
    Helm,
    RenderedCI,
    all_containers,
    app_version,
    by_kind,
    chart_values,
    ci_values,
    env_of,
    main_container,
    one,
    pod_templates,
    selector_matches,
)

AUTOSCALE_LABEL = "jobqueue.dev/autoscale"
# annotation -> key under a pool's autoscale values
AUTOSCALE_ANNOTATIONS = {
    "jobqueue.dev/min-replicas": "minReplicas",
    "jobqueue.dev/max-replicas": "maxReplicas",
    "jobqueue.dev/jobs-per-replica": "jobsPerReplica",
    "jobqueue.dev/activation-jobs": "activationJobs",
    "jobqueue.dev/scale-down-delay": "scaleDownDelay",
    "jobqueue.dev/paused": "paused",
    "jobqueue.dev/idle-replicas": "idleReplicas",
    "jobqueue.dev/db-pressure-seconds": "dbPressureSeconds",
}


def worker_deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["jobqueue.dev/pool"]: d
        for d in by_kind(objects, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }


# ---------------------------------------------------------------- worker pools
def test_default_pool_is_autoscaled_without_replicas(rendered: RenderedCI) -> None:
    pools = worker_deployments(rendered["default"])
    assert set(pools) == {"default"}
    deployment = pools["default"]
    assert deployment["metadata"]["labels"][AUTOSCALE_LABEL] == "true"
    assert "replicas" not in deployment["spec"]


def test_pool_annotations_match_the_values(rendered: RenderedCI) -> None:
    values = ci_values("two-pools")["workers"]["bursty"]
    bursty = worker_deployments(rendered["two-pools"])["bursty"]
    annotations = bursty["metadata"]["annotations"]
    assert annotations["jobqueue.dev/queues"] == ",".join(values["queues"])
    defaults = chart_values()["workerDefaults"]["autoscale"]
    for annotation, key in AUTOSCALE_ANNOTATIONS.items():
        expected = values["autoscale"].get(key, defaults[key])
        assert annotations[annotation] == str(expected).lower(), annotation
    assert "replicas" not in bursty["spec"]
    env = env_of(main_container(bursty))
    assert env["WORKER_QUEUES"]["value"] == "emails,images"
    assert env["MAX_CONCURRENT_JOBS"]["value"] == "8"
    assert bursty["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 120
    assert float(env["JOBQUEUE_DRAIN_TIMEOUT"]["value"]) < 120


OPTIONAL_ANNOTATIONS = (
    "jobqueue.dev/target-wait-seconds",
    "jobqueue.dev/db-connections-per-replica",
    "jobqueue.dev/db-reserved-connections",
)


def test_optional_autoscale_values_become_annotations_the_controller_reads(helm: Helm) -> None:
    default = worker_deployments(helm.template())["default"]["metadata"]["annotations"]
    assert not set(OPTIONAL_ANNOTATIONS) & set(default)  # unset: the controller's defaults
    autoscale = {"targetWaitSeconds": 2.5, "dbConnectionsPerReplica": 4, "dbReservedConnections": 0}
    objects = helm.template(values={"workers": {"default": {"autoscale": autoscale}}})
    annotations = worker_deployments(objects)["default"]["metadata"]["annotations"]
    assert [annotations[a] for a in OPTIONAL_ANNOTATIONS] == ["2.5", "4", "0"]
    config = parse(annotations)
    assert config.scaling.target_wait_seconds == 2.5
    assert (
        config.capacity.db_connections_per_replica,
        config.capacity.db_reserved_connections,
    ) == (
        4,
        0,
    )


def test_optional_autoscale_values_are_checked_by_the_schema(helm: Helm) -> None:
    for key, bad in (
        ("targetWaitSeconds", 0),
        ("dbConnectionsPerReplica", 0),
        ("dbReservedConnections", -1),
    ):
        error = helm.template_error(values={"workers": {"default": {"autoscale": {key: bad}}}})
        assert key in error, error


def test_fixed_pool_has_replicas_and_no_autoscale_contract(rendered: RenderedCI) -> None:
    pools = worker_deployments(rendered["two-pools"])
    assert set(pools) == {"bursty", "steady"}, "workers.default: null removes the default pool"
    steady = pools["steady"]
    assert steady["spec"]["replicas"] == 2
    assert AUTOSCALE_LABEL not in steady["metadata"]["labels"]
    assert not any(k.startswith("jobqueue.dev/") for k in steady["metadata"].get("annotations", {}))
    assert main_container(steady)["resources"]["limits"]["memory"] == "1Gi"


def test_pools_have_distinct_selectors(rendered: RenderedCI) -> None:
    pools = worker_deployments(rendered["two-pools"])
    bursty, steady = pools["bursty"], pools["steady"]
    bursty_pod_labels = bursty["spec"]["template"]["metadata"]["labels"]
    assert selector_matches(bursty["spec"]["selector"], bursty_pod_labels)
    assert not selector_matches(steady["spec"]["selector"], bursty_pod_labels)


def test_pool_disruption_budgets_follow_the_replica_range(rendered: RenderedCI) -> None:
    budgets = {
        pdb["metadata"]["name"] for pdb in by_kind(rendered["two-pools"], "PodDisruptionBudget")
    }
    assert f"{FULLNAME}-worker-bursty" in budgets  # up to 20 pods
    assert f"{FULLNAME}-worker-steady" in budgets  # 2 pods


def test_no_disruption_budget_for_a_single_pod_pool(helm: Helm) -> None:
    objects = helm.template(values={"workers": {"default": {"autoscale": {"maxReplicas": 1}}}})
    assert not [
        p for p in by_kind(objects, "PodDisruptionBudget") if "worker" in p["metadata"]["name"]
    ]


def test_pool_overrides_of_false_and_zero_are_kept(helm: Helm) -> None:
    """A pool's `false` or `0` must override a default (sprig's merge would drop them)."""
    values = {"workers": {"default": {"replicas": 0, "autoscale": {"enabled": False}}}}
    deployment = worker_deployments(helm.template(values=values))["default"]
    assert deployment["spec"]["replicas"] == 0
    assert AUTOSCALE_LABEL not in deployment["metadata"]["labels"]


def test_drain_timeout_must_stay_below_the_grace_period(helm: Helm) -> None:
    values = {"workers": {"default": {"terminationGracePeriodSeconds": 30, "drainTimeout": 30}}}
    assert "drainTimeout" in helm.template_error(values=values)


def test_min_replicas_must_not_exceed_max(helm: Helm) -> None:
    values = {"workers": {"default": {"autoscale": {"minReplicas": 5, "maxReplicas": 2}}}}
    assert "minReplicas" in helm.template_error(values=values)


def test_workers_register_with_their_pod_name(rendered: RenderedCI) -> None:
    for deployment in worker_deployments(rendered["two-pools"]).values():
        pod_name = env_of(main_container(deployment))["POD_NAME"]
        assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


# ---------------------------------------------------------------- labels, image, config
def test_selector_labels_are_kept_apart(rendered: RenderedCI) -> None:
    for obj in rendered["two-pools"]:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        selector = obj["spec"]["selector"]["matchLabels"]
        assert set(selector) <= {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "jobqueue.dev/pool",
        }
        assert selector_matches(
            obj["spec"]["selector"], obj["spec"]["template"]["metadata"]["labels"]
        )
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == app_version()


def test_every_object_is_labelled(rendered: RenderedCI) -> None:
    for obj in rendered["extras"]:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "job-queue", obj["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, obj["kind"]
        assert "helm.sh/chart" in labels, obj["kind"]


def test_image_tag_defaults_to_app_version(rendered: RenderedCI, helm: Helm) -> None:
    images = {
        c["image"]
        for _, t in pod_templates(rendered["default"])
        for c in all_containers(t["spec"])
        if c["name"] != "postgresql"
    }
    assert images == {f"job-queue:{app_version()}"}
    digest = "sha256:" + "a" * 64
    objects = helm.template(values={"image": {"repository": "reg.local/jq", "digest": digest}})
    api = main_container(one(objects, "Deployment", f"{FULLNAME}-api"))
    assert api["image"] == f"reg.local/jq@{digest}"


def test_config_change_rolls_the_pods(helm: Helm) -> None:
    def checksums(debug: bool) -> set[str]:
        objects = helm.template(values={"config": {"debug": debug}})
        return {
            t["metadata"]["annotations"]["checksum/config"]
            for w, t in pod_templates(objects)
            if w.startswith("Deployment/")
        }

    before, after = checksums(False), checksums(True)
    assert len(before) == 1 and len(after) == 1 and before != after


def test_components_run_their_command_on_their_port(rendered: RenderedCI) -> None:
    objects = rendered["default"]
    expected = {
        "api": ("api", 8001),
        "controller": ("controller", 9200),
        "worker-default": ("worker", 9100),
    }
    for suffix, (command, port) in expected.items():
        container = main_container(one(objects, "Deployment", f"{FULLNAME}-{suffix}"))
        assert container["args"] == [command]
        assert [p["containerPort"] for p in container["ports"]] == [port]
        probe_ports = {container[p]["httpGet"]["port"] for p in ("livenessProbe", "readinessProbe")}
        assert probe_ports == {container["ports"][0]["name"]}
    api = main_container(one(objects, "Deployment", f"{FULLNAME}-api"))
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"


# ---------------------------------------------------------------- migrations, tests
def test_migrations_run_as_a_hook_by_default(rendered: RenderedCI) -> None:
    objects = rendered["default"]
    job = one(objects, "Job", f"{FULLNAME}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,pre-upgrade"
    policies = annotations["helm.sh/hook-delete-policy"].split(",")
    assert policies == ["before-hook-creation", "hook-succeeded"]
    assert job["spec"]["backoffLimit"] > 0
    assert main_container(job)["args"] == ["migrate"]
    assert "envFrom" not in main_container(job), "a pre-upgrade hook would read the old ConfigMap"
    for _, template in pod_templates(objects):
        assert "initContainers" not in template["spec"]


def test_gitops_mode_migrates_in_init_containers(rendered: RenderedCI) -> None:
    objects = rendered["extras"]
    assert not [j for j in by_kind(objects, "Job") if j["metadata"]["name"].endswith("-migrate")]
    for deployment in by_kind(objects, "Deployment"):
        [init] = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["args"] == ["migrate"]


def test_helm_test_enqueues_through_the_api(rendered: RenderedCI) -> None:
    job = one(rendered["default"], "Job", f"{FULLNAME}-test-enqueue")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    env = env_of(main_container(job))
    assert env["API_URL"]["value"] == f"http://{FULLNAME}-api:8001"
    assert "secretKeyRef" in env["JOBQUEUE_API_TOKEN"]["valueFrom"]
    script = main_container(job)["args"][0]
    compile(script, "helm-test", "exec")  # the script is valid Python


def test_optional_extras_render(rendered: RenderedCI) -> None:
    objects = rendered["extras"]
    ingress = one(objects, "Ingress", f"{FULLNAME}-api")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{FULLNAME}-api", "port": {"name": "http"}}
    monitor = one(objects, "ServiceMonitor", FULLNAME)
    services = [
        s
        for s in by_kind(objects, "Service")
        if selector_matches(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    scraped = {(s["metadata"]["name"], p["name"]) for s in services for p in s["spec"]["ports"]}
    assert scraped == {
        (f"{FULLNAME}-api", "http"),
        (f"{FULLNAME}-worker-metrics", "metrics"),
        (f"{FULLNAME}-controller-metrics", "metrics"),
    }
    dashboard = one(objects, "ConfigMap", f"{FULLNAME}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert yaml.safe_load(dashboard["data"]["job-queue.json"])["panels"]
