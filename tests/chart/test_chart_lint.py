"""L0: helm lint, the rendered objects against the Kubernetes schemas, the values schema's
refusals, and the restricted Pod Security profile of every pod."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.chart.chart_support import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    SECRETS_VALUES,
    Helm,
    RenderedCI,
    all_containers,
    chart_values,
    pod_templates,
)
from tests.chart.pod_security import restricted_violations

CI_NAMES = [path.name.removesuffix("-values.yaml") for path in CI_VALUES]
# Custom resources the Kubernetes schemas do not cover: checked by shape only.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def test_ci_values_cover_the_required_scenarios() -> None:
    required = {"default", "external-database", "two-pools", "ha-controller", "network-policy"}
    assert required <= set(CI_NAMES)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=CI_NAMES)
def test_helm_lint_strict(helm: Helm, values_file: Path) -> None:
    out = helm.run(
        "lint", "--strict", str(CHART), "--values", str(SECRETS_VALUES),
        "--values", str(values_file), "--kube-version", KUBE_VERSION,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_values_file_matches_its_own_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(chart_values())


def test_schema_closes_every_object_it_defines() -> None:
    """additionalProperties is false on every object with properties, so typos are errors."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path)
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(schema, "#")
    assert open_objects == []


def _kubernetes_schema_version() -> str:
    """The newest schema set kubernetes-validate ships that is not newer than our pin."""
    wanted = tuple(int(part) for part in KUBE_VERSION.lstrip("v").split(".")[:2])
    shipped = {
        tuple(int(p) for p in v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()
    }
    usable = sorted(version for version in shipped if version <= wanted)
    assert usable, f"kubernetes-validate ships no schemas at or below {KUBE_VERSION}"
    major, minor = usable[-1]
    return f"{major}.{minor}.0"


def test_schemas_match_the_pinned_kubernetes_minor() -> None:
    """Validation below is only meaningful if it uses the pinned minor version's schemas."""
    assert (
        _kubernetes_schema_version().rsplit(".", 1)[0] == KUBE_VERSION.lstrip("v").rsplit(".", 1)[0]
    )


@pytest.mark.parametrize("name", CI_NAMES)
def test_rendered_objects_are_valid_kubernetes(rendered: RenderedCI, name: str) -> None:
    version = _kubernetes_schema_version()
    objects = rendered[name]
    assert objects
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, where
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{where} is invalid at {path}: {exc.message}")


@pytest.mark.parametrize("name", CI_NAMES)
def test_every_pod_passes_the_restricted_profile(rendered: RenderedCI, name: str) -> None:
    templates = dict(pod_templates(rendered[name]))
    assert templates
    problems = {where: restricted_violations(t) for where, t in templates.items()}
    assert {where: found for where, found in problems.items() if found} == {}


@pytest.mark.parametrize("name", CI_NAMES)
def test_every_container_is_hardened_beyond_the_profile(rendered: RenderedCI, name: str) -> None:
    """Read-only root with a writable /tmp, no token unless it is needed, and resources."""
    for where, template in pod_templates(rendered[name]):
        spec = template["spec"]
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        if spec["serviceAccountName"].endswith("-controller"):
            assert spec["automountServiceAccountToken"] is True, where
        else:
            assert spec["automountServiceAccountToken"] is False, where
        for container in all_containers(spec):
            label = f"{where} {container['name']}"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, label
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], label
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"], label
            assert resources["limits"]["memory"], label


def test_the_checker_finds_each_kind_of_violation() -> None:
    """The restricted checker must be able to fail: a pod breaking many rules is caught."""
    bad = {
        "metadata": {
            "annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}
        },
        "spec": {
            "hostNetwork": True,
            "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            "containers": [
                {
                    "name": "c",
                    "ports": [{"containerPort": 80, "hostPort": 80}],
                    "securityContext": {
                        "privileged": True,
                        "runAsUser": 0,
                        "capabilities": {"add": ["SYS_ADMIN"]},
                        "seccompProfile": {"type": "Unconfined"},
                    },
                }
            ],
        },
    }
    found = "\n".join(restricted_violations(bad))
    for expected in (
        "hostNetwork",
        "kernel.msgmax",
        "hostPath",
        "hostPort",
        "privileged",
        "runAsUser",
        "SYS_ADMIN",
        "drop must include ALL",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "Unconfined",
        "apparmor",
    ):
        assert expected in found, expected


def test_the_checker_passes_a_minimal_restricted_pod() -> None:
    good = {
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [
                {
                    "name": "c",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                    },
                }
            ],
        }
    }
    assert restricted_violations(good) == []


MISSPELT_VALUES = [
    pytest.param({"imagee": {"tag": "x"}}, "imagee", id="top-level"),
    pytest.param({"workers": {"default": {"concurrancy": 4}}}, "concurrancy", id="in-a-pool"),
    pytest.param(
        {"workerDefaults": {"autoscale": {"maxReplica": 4}}}, "maxReplica", id="autoscale"
    ),
    pytest.param(
        {"postgresql": {"persistance": {"enabled": False}}}, "persistance", id="postgresql"
    ),
    pytest.param({"api": {"resources": {"request": {"cpu": "1"}}}}, "request", id="resources"),
    pytest.param(
        {"postgresql": {"auth": {"password": "hunter2"}}}, "password", id="no-password-value"
    ),
    pytest.param({"controller": {"replicaCount": 3}}, "replicaCount", id="controller-at-most-2"),
    pytest.param({"migrations": {"mode": "job"}}, "mode", id="migrations-mode-enum"),
    pytest.param({"workers": {"Bad_Name": {}}}, "Bad_Name", id="pool-name-not-dns"),
    pytest.param({"workers": {"default": {"concurrency": "8"}}}, "concurrency", id="wrong-type"),
]


@pytest.mark.parametrize(("values", "culprit"), MISSPELT_VALUES)
def test_schema_rejects_misspelt_or_invalid_values(
    helm: Helm, values: dict[str, Any], culprit: str
) -> None:
    error = helm.template_error(values=values)
    assert "values don't meet the specifications of the schema" in error
    assert culprit in error


def test_lint_strict_fails_on_a_misspelt_value(helm: Helm, tmp_path: Path) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text("api:\n  replicaCont: 2\n")
    out = helm.run(
        "lint", "--strict", str(CHART), "--values", str(bad), "--kube-version", KUBE_VERSION
    )
    assert out.returncode != 0
    assert "replicaCont" in out.stdout + out.stderr
