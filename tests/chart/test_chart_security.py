"""L1: the chart's security contract in what `helm template` renders: RBAC and the admission
policy, secrets, database roles and the NetworkPolicies (docs/security.md)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.chart.chart_support import (
    FULLNAME,
    NAMESPACE,
    SECRETS_VALUES,
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
    assert not any("resourceNames" in r for r in roles[f"{FULLNAME}-controller"]["rules"])


def test_the_lease_rights_name_the_one_lease(rendered: RenderedCI) -> None:
    """Only create (whose name is in the body, not the URL) goes without resourceNames."""
    role = one(rendered["default"], "Role", f"{FULLNAME}-controller-leader-election")
    lease = env_of(
        main_container(one(rendered["default"], "Deployment", f"{FULLNAME}-controller"))
    )["JOBQUEUE_CONTROLLER_LEASE_NAME"]["value"]
    for rule in role["rules"]:
        if rule["verbs"] == ["create"]:
            assert "resourceNames" not in rule
        else:
            assert rule["resourceNames"] == [lease], rule


def test_controller_rbac_matches_the_role_the_controller_tests_run_under(
    rendered: RenderedCI,
) -> None:
    """The L3 tests bind the controller to controller/rbac.yaml: the chart grants the same
    verbs, and limits the same ones to the Lease's name."""
    reference = yaml.safe_load((REPO_ROOT / "controller" / "rbac.yaml").read_text())
    roles = by_kind(rendered["default"], "Role")
    assert set().union(*(rule_triples(role) for role in roles)) == rule_triples(reference)

    def named(rules: list[dict[str, Any]]) -> set[tuple[str, ...]]:
        return {tuple(r["verbs"]) for r in rules if "resourceNames" in r}

    assert named(reference["rules"]) == named([r for role in roles for r in role["rules"]])


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
SECRET_SETTINGS = [
    "apiToken.existingSecret",
    "apiReadToken.existingSecret",
    "apiEnqueueToken.existingSecret",
    "postgresql.auth.existingSecret",
]


@pytest.mark.parametrize("missing", SECRET_SETTINGS)
def test_a_render_without_cluster_access_makes_no_secret(helm: Helm, missing: str) -> None:
    """helm template (a GitOps tool's render) cannot see the Secrets in use: a new random one
    on every sync would lock the release out, so each unnamed Secret fails the render."""
    named: dict[str, Any] = yaml.safe_load(SECRETS_VALUES.read_text())
    top, *rest = missing.split(".")
    node = named[top]
    for part in rest[:-1]:
        node = node[part]
    del node[rest[-1]]
    error = helm.template_error(values=named, secrets=False)
    assert missing in error and "cannot read the cluster" in error, error
    assert "helm install" in error


def test_tokens_are_separate_secrets_by_scope(rendered: RenderedCI) -> None:
    env = env_of(main_container(one(rendered["default"], "Deployment", f"{FULLNAME}-api")))
    named = yaml.safe_load(SECRETS_VALUES.read_text())
    for variable, values_key in (
        ("JOBQUEUE_API_TOKEN", "apiToken"),
        ("JOBQUEUE_API_READ_TOKEN", "apiReadToken"),
        ("JOBQUEUE_API_ENQUEUE_TOKEN", "apiEnqueueToken"),
    ):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {
            "name": named[values_key]["existingSecret"],
            "key": "token",
        }
    # the helm test enqueues and follows one job: the enqueue token is enough
    test_job = one(rendered["default"], "Job", f"{FULLNAME}-test-enqueue")
    test_env = env_of(main_container(test_job))
    assert (
        test_env["JOBQUEUE_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == (named["apiEnqueueToken"]["existingSecret"])
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


# ---------------------------------------------------------------- database roles
def db_user(container: dict[str, Any]) -> str:
    url = env_of(container)["DB_URL"]["value"]
    return str(url.split("://", 1)[1].split("@", 1)[0])


def test_each_component_has_its_own_database_role(rendered: RenderedCI) -> None:
    objects = rendered["default"]
    users = {
        where: db_user(container)
        for where, template in pod_templates(objects)
        for container in all_containers(template["spec"])
        if "DB_URL" in env_of(container)
    }
    assert users == {
        f"Deployment/{FULLNAME}-api": "jobqueue",
        f"Deployment/{FULLNAME}-worker-default": "jobqueue",
        f"Deployment/{FULLNAME}-controller": "jobqueue_readonly",
        f"Job/{FULLNAME}-migrate": "jobqueue_owner",
    }
    migrate = env_of(main_container(one(objects, "Job", f"{FULLNAME}-migrate")))
    assert migrate["JOBQUEUE_DB_RUNTIME_ROLE"]["value"] == "jobqueue"
    assert migrate["JOBQUEUE_DB_READONLY_ROLE"]["value"] == "jobqueue_readonly"
    keys = {
        where: env_of(main_container({"spec": {"template": t}}))["PGPASSWORD"]["valueFrom"][
            "secretKeyRef"
        ]["key"]
        for where, t in pod_templates(objects)
        if "PGPASSWORD" in env_of(main_container({"spec": {"template": t}}))
    }
    assert keys[f"Job/{FULLNAME}-migrate"] == "owner-password"
    assert keys[f"Deployment/{FULLNAME}-controller"] == "readonly-password"


def test_the_superuser_stays_in_the_postgresql_pod(rendered: RenderedCI) -> None:
    for name in ("default", "extras", "network-policy"):
        objects = rendered[name]
        for where, template in pod_templates(objects):
            for container in all_containers(template["spec"]):
                keys = {
                    entry["valueFrom"]["secretKeyRef"]["key"]
                    for entry in container.get("env", [])
                    if "secretKeyRef" in entry.get("valueFrom", {})
                }
                if where == f"StatefulSet/{FULLNAME}-postgresql":
                    assert "postgres-password" in keys
                else:
                    assert "postgres-password" not in keys, where
        postgres = env_of(main_container(one(objects, "StatefulSet", f"{FULLNAME}-postgresql")))
        assert postgres["POSTGRES_USER"]["value"] == "postgres"
        script = one(objects, "ConfigMap", f"{FULLNAME}-postgresql-init")["data"]
        text = script["10-jobqueue-roles.sh"]
        assert "NOSUPERUSER" in text and "SUPERUSER " not in text.replace("NOSUPERUSER", "")


def test_one_role_for_a_release_made_before_separate_roles(helm: Helm) -> None:
    objects = helm.template(values={"postgresql": {"auth": {"separateRoles": False}}})
    users = {
        db_user(c)
        for _, t in pod_templates(objects)
        for c in all_containers(t["spec"])
        if "DB_URL" in env_of(c)
    }
    assert users == {"jobqueue"}
    assert not [c for c in by_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-init")]
    migrate = env_of(main_container(one(objects, "Job", f"{FULLNAME}-migrate")))
    assert "JOBQUEUE_DB_RUNTIME_ROLE" not in migrate


def test_an_external_database_may_have_roles_of_its_own(helm: Helm) -> None:
    values = {
        "postgresql": {"enabled": False},
        "externalDatabase": {
            "host": "db", "existingSecret": "app-db",
            "owner": {"username": "owner", "existingSecret": "owner-db"},
            "readonly": {"username": "reader"},
        },
    }  # fmt: skip
    objects = helm.template(values=values)
    migrate = main_container(one(objects, "Job", f"{FULLNAME}-migrate"))
    assert db_user(migrate) == "owner"
    assert env_of(migrate)["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "owner-db"
    assert env_of(migrate)["JOBQUEUE_DB_READONLY_ROLE"]["value"] == "reader"
    controller = main_container(one(objects, "Deployment", f"{FULLNAME}-controller"))
    assert db_user(controller) == "reader"
    assert env_of(controller)["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "app-db"
    assert db_user(main_container(one(objects, "Deployment", f"{FULLNAME}-api"))) == "jobqueue"


def test_the_read_replica_is_the_apis_read_url(helm: Helm) -> None:
    objects = helm.template(values={"api": {"readReplica": {"host": "pg-replica", "port": 6432}}})
    env = env_of(main_container(one(objects, "Deployment", f"{FULLNAME}-api")))
    assert env["JOBQUEUE_READ_DB_URL"]["value"] == "postgresql://jobqueue@pg-replica:6432/jobqueue"
    plain = env_of(main_container(one(helm.template(), "Deployment", f"{FULLNAME}-api")))
    assert "JOBQUEUE_READ_DB_URL" not in plain


# ---------------------------------------------------------------- the admission policy
def test_the_admission_policy_holds_the_controller_to_its_writes(rendered: RenderedCI) -> None:
    objects = rendered["default"]
    [policy] = by_kind(objects, "ValidatingAdmissionPolicy")
    [binding] = by_kind(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    [condition] = policy["spec"]["matchConditions"]
    assert f"system:serviceaccount:{NAMESPACE}:{FULLNAME}-controller" in condition["expression"]
    selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NAMESPACE]}
    ]
    resources = {tuple(r["resources"]) for r in policy["spec"]["matchConstraints"]["resourceRules"]}
    assert resources == {("deployments",), ("pods",)}
    # the chart's autoscaled worker pods carry the label the policy asks for
    worker = one(objects, "Deployment", f"{FULLNAME}-worker-default")
    assert worker["spec"]["template"]["metadata"]["labels"]["jobqueue.dev/autoscale"] == "true"


def test_the_admission_policy_follows_the_watched_namespaces(rendered: RenderedCI) -> None:
    [binding] = by_kind(rendered["ha-controller"], "ValidatingAdmissionPolicyBinding")
    [expression] = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert sorted(expression["values"]) == sorted(
        ci_values("ha-controller")["controller"]["namespaces"]
    )
    [cluster_wide] = by_kind(rendered["extras"], "ValidatingAdmissionPolicyBinding")
    assert "matchResources" not in cluster_wide["spec"]


def test_the_admission_policy_needs_kubernetes_1_30(helm: Helm) -> None:
    error = helm._template((), None, "jq", NAMESPACE, ("--kube-version", "v1.29.0")).stderr
    assert "admissionPolicy" in error and "1.30" in error
    off = helm.template(values={"controller": {"admissionPolicy": {"enabled": False}}})
    assert not by_kind(off, "ValidatingAdmissionPolicy")


# ---------------------------------------------------------------- NetworkPolicies
def policy_for(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return one(objects, "NetworkPolicy", f"{FULLNAME}-{component}")


def test_network_policy_lets_only_our_components_reach_the_database(rendered: RenderedCI) -> None:
    objects = rendered["network-policy"]
    policy = policy_for(objects, "postgresql")
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


@pytest.mark.parametrize("name", ["default", "two-pools", "extras"])
def test_every_pod_has_a_network_policy_by_default(rendered: RenderedCI, name: str) -> None:
    objects = rendered[name]
    policies = by_kind(objects, "NetworkPolicy")
    for where, template in pod_templates(objects):
        if where.startswith("Job/"):
            continue  # migrations and the helm test take no connections
        covering = [
            p for p in policies
            if selector_matches(p["spec"]["podSelector"], template["metadata"]["labels"])
        ]  # fmt: skip
        assert len(covering) == 1, where
        [rule] = covering[0]["spec"]["ingress"]
        ports = template["spec"]["containers"][0].get("ports", [])
        assert [p["port"] for p in rule["ports"]] == [ports[0]["name"]], where


def test_network_policy_peers_can_be_narrowed(helm: Helm) -> None:
    ingress = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
    prometheus = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    objects = helm.template(
        values={"networkPolicy": {"api": {"from": [ingress]}, "metricsFrom": [prometheus]}}
    )
    assert policy_for(objects, "api")["spec"]["ingress"][0]["from"] == [ingress]
    assert policy_for(objects, "worker")["spec"]["ingress"][0]["from"] == [prometheus]
    assert policy_for(objects, "controller")["spec"]["ingress"][0]["from"] == [prometheus]
    off = helm.template(values={"networkPolicy": {"enabled": False}})
    assert not by_kind(off, "NetworkPolicy")
