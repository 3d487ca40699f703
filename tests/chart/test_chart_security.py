"""L1: the chart's security contract in what `helm template` renders: RBAC, secrets and the
NetworkPolicy."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from tests.chart.chart_support import (
    FULLNAME,
    NAMESPACE,
    Helm,
    RenderedCI,
    all_containers,
    by_kind,
    chart_values,
    ci_values,
    env_of,
    main_container,
    one,
    pod_templates,
    selector_matches,
)
from tests.fixtures.tools import REPO_ROOT

CONTROLLER_RULES = {
    ("apps", "deployments", "get"),
    ("apps", "deployments", "list"),
    ("apps", "deployments", "watch"),
    ("apps", "deployments", "patch"),  # the jobqueue.dev/status annotation
    ("apps", "deployments/scale", "get"),
    ("apps", "deployments/scale", "patch"),
    ("apps", "deployments/scale", "update"),
    ("", "pods", "list"),
    ("", "pods", "patch"),
    ("", "events", "create"),
}
LEASE_RULES = {
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
}


def rule_triples(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# ---------------------------------------------------------------- RBAC
def test_controller_rbac_is_exactly_the_needed_verbs(rendered: RenderedCI) -> None:
    objects = rendered["default"]
    roles = {role["metadata"]["name"]: role for role in by_kind(objects, "Role")}
    assert set(roles) == {f"{FULLNAME}-controller", f"{FULLNAME}-controller-leader-election"}
    assert rule_triples(roles[f"{FULLNAME}-controller"]) == CONTROLLER_RULES
    assert rule_triples(roles[f"{FULLNAME}-controller-leader-election"]) == LEASE_RULES
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert "resourceNames" not in rule


def test_controller_rbac_matches_the_role_the_controller_tests_run_under(
    rendered: RenderedCI,
) -> None:
    """The L3 tests bind the controller to controller/rbac.yaml: the chart grants the same."""
    exercised = rule_triples(yaml.safe_load((REPO_ROOT / "controller" / "rbac.yaml").read_text()))
    roles = by_kind(rendered["default"], "Role")
    assert set().union(*(rule_triples(role) for role in roles)) == exercised


def test_only_the_controller_is_bound_to_a_role(rendered: RenderedCI) -> None:
    for name in ("default", "ha-controller", "extras"):
        bindings = by_kind(rendered[name], "RoleBinding") + by_kind(
            rendered[name], "ClusterRoleBinding"
        )
        assert bindings
        for binding in bindings:
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": f"{FULLNAME}-controller", "namespace": NAMESPACE}
            ]


def test_watched_namespaces_each_get_a_role(rendered: RenderedCI) -> None:
    objects = rendered["ha-controller"]
    watched = ci_values("ha-controller")["controller"]["namespaces"]
    roles = [
        r for r in by_kind(objects, "Role") if r["metadata"]["name"] == f"{FULLNAME}-controller"
    ]
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(watched)
    for role in roles:
        assert rule_triples(role) == CONTROLLER_RULES
    lease_role = one(objects, "Role", f"{FULLNAME}-controller-leader-election")
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    env = env_of(main_container(one(objects, "Deployment", f"{FULLNAME}-controller")))
    assert env["JOBQUEUE_CONTROLLER_NAMESPACES"]["value"] == ",".join(watched)


def test_cluster_wide_controller_uses_a_cluster_role(rendered: RenderedCI) -> None:
    objects = rendered["extras"]
    cluster_role = one(objects, "ClusterRole", f"{FULLNAME}-controller")
    assert rule_triples(cluster_role) == CONTROLLER_RULES
    assert [r["metadata"]["name"] for r in by_kind(objects, "Role")] == [
        f"{FULLNAME}-controller-leader-election"
    ]
    env = env_of(main_container(one(objects, "Deployment", f"{FULLNAME}-controller")))
    assert env["JOBQUEUE_CONTROLLER_CLUSTER_WIDE"]["value"] == "true"
    assert "JOBQUEUE_CONTROLLER_NAMESPACES" not in env


def test_controller_settings_come_from_the_downward_api(rendered: RenderedCI) -> None:
    env = env_of(main_container(one(rendered["default"], "Deployment", f"{FULLNAME}-controller")))
    for name, field in (
        ("POD_NAME", "metadata.name"),
        ("JOBQUEUE_CONTROLLER_NAMESPACES", "metadata.namespace"),
        ("JOBQUEUE_CONTROLLER_LEASE_NAMESPACE", "metadata.namespace"),
    ):
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == field, name
    assert env["JOBQUEUE_CONTROLLER_CLUSTER_WIDE"]["value"] == "false"


def test_ha_controller_has_two_replicas_and_a_budget(rendered: RenderedCI) -> None:
    objects = rendered["ha-controller"]
    assert one(objects, "Deployment", f"{FULLNAME}-controller")["spec"]["replicas"] == 2
    assert (
        one(objects, "PodDisruptionBudget", f"{FULLNAME}-controller")["spec"]["minAvailable"] == 1
    )
    assert one(objects, "PodDisruptionBudget", f"{FULLNAME}-api")["spec"]["maxUnavailable"] == 1
    default_budgets = {
        p["metadata"]["name"] for p in by_kind(rendered["default"], "PodDisruptionBudget")
    }
    assert (
        f"{FULLNAME}-controller" not in default_budgets and f"{FULLNAME}-api" not in default_budgets
    )


# ---------------------------------------------------------------- secrets
def secret_values(objects: list[dict[str, Any]]) -> set[str]:
    return {
        base64.b64decode(value).decode()
        for secret in by_kind(objects, "Secret")
        for value in (secret.get("data") or {}).values()
    }


@pytest.mark.parametrize("name", ["default", "extras", "network-policy"])
def test_no_secret_value_outside_secrets(rendered: RenderedCI, name: str) -> None:
    objects = rendered[name]
    secrets = secret_values(objects)
    assert len(secrets) == 2  # the generated database password and API token
    for obj in objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        for secret in secrets:
            assert secret not in text, (
                f"a secret value appears in {obj['kind']}/{obj['metadata']['name']}"
            )


@pytest.mark.parametrize("name", ["default", "external-database"])
def test_database_password_only_from_a_secret_ref(rendered: RenderedCI, name: str) -> None:
    for where, template in pod_templates(rendered[name]):
        for container in all_containers(template["spec"]):
            env = env_of(container)
            if "DB_URL" not in env:
                continue
            url = env["DB_URL"]["value"]
            userinfo = url.split("://", 1)[1].split("@", 1)[0]
            assert ":" not in userinfo, f"{where}: DB_URL carries a password"
            assert "secretKeyRef" in env["PGPASSWORD"]["valueFrom"], where


def test_config_maps_hold_no_credentials(rendered: RenderedCI) -> None:
    for name in ("default", "extras", "external-database"):
        for config_map in by_kind(rendered[name], "ConfigMap"):
            for key in config_map.get("data", {}):
                assert not any(word in key.upper() for word in ("PASSWORD", "TOKEN", "SECRET")), key


def test_values_hold_no_secret() -> None:
    """No value under a secret-sounding key holds text, except names of Secrets and keys."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                lowered = key.lower()
                if any(word in lowered for word in ("password", "token", "secret")) and isinstance(
                    value, str
                ):
                    assert lowered.startswith("existingsecret") or value == "", f"{path}.{key}"
                walk(value, f"{path}.{key}")

    walk(chart_values(), "values")


def test_generated_secrets_come_from_existing_secrets_when_named(rendered: RenderedCI) -> None:
    objects = rendered["external-database"]
    assert not by_kind(objects, "Secret")
    assert not by_kind(objects, "StatefulSet")
    api = main_container(one(objects, "Deployment", f"{FULLNAME}-api"))
    env = env_of(api)
    assert env["JOBQUEUE_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "jobqueue-api",
        "key": "api-token",
    }
    assert env["DB_USER"]["valueFrom"]["secretKeyRef"] == {
        "name": "jobqueue-database",
        "key": "db-user",
    }
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "jobqueue-database",
        "key": "db-password",
    }
    assert env["DB_URL"]["value"] == "postgresql://$(DB_USER)@db.example.internal:6432/jobs"
    assert env["PGSSLMODE"]["value"] == "require"
    names = [entry["name"] for entry in api["env"]]
    assert names.index("DB_USER") < names.index("DB_URL"), "$(DB_USER) must be defined before use"


def test_external_database_needs_a_host_and_a_secret(helm: Helm) -> None:
    error = helm.template_error(
        values={"postgresql": {"enabled": False}, "externalDatabase": {"existingSecret": "s"}}
    )
    assert "externalDatabase.host" in error
    error = helm.template_error(
        values={"postgresql": {"enabled": False}, "externalDatabase": {"host": "db"}}
    )
    assert "externalDatabase.existingSecret" in error


# ---------------------------------------------------------------- NetworkPolicy
def test_network_policy_lets_only_our_components_reach_the_database(rendered: RenderedCI) -> None:
    objects = rendered["network-policy"]
    [policy] = by_kind(objects, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    [peer] = rule["from"]
    assert set(peer) == {"podSelector"}, "no namespaceSelector or ipBlock: this release's pods only"
    assert rule["ports"] == [{"port": "postgresql", "protocol": "TCP"}]
    templates = dict(pod_templates(objects))
    selected = {
        w
        for w, t in templates.items()
        if selector_matches(spec["podSelector"], t["metadata"]["labels"])
    }
    assert selected == {f"StatefulSet/{FULLNAME}-postgresql"}
    allowed = {
        w
        for w, t in templates.items()
        if selector_matches(peer["podSelector"], t["metadata"]["labels"])
    }
    assert allowed == {
        f"Deployment/{FULLNAME}-api",
        f"Deployment/{FULLNAME}-controller",
        f"Deployment/{FULLNAME}-worker-default",
        f"Job/{FULLNAME}-migrate",
    }
    another_release = {**templates[f"Deployment/{FULLNAME}-api"]["metadata"]["labels"]}
    another_release["app.kubernetes.io/instance"] = "other"
    assert not selector_matches(peer["podSelector"], another_release)


def test_network_policy_is_off_by_default(rendered: RenderedCI) -> None:
    assert not by_kind(rendered["default"], "NetworkPolicy")
