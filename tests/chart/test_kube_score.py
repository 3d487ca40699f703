"""L0: kube-score judges the chart rendered with every ci values file. Each finding we reject is
listed below with its reason; anything else it reports fails the test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.chart.chart_support import CI_VALUES, KUBE_VERSION, SECRETS_VALUES, Helm
from tests.fixtures.tools import require_binaries

CI_NAMES = [path.name.removesuffix("-values.yaml") for path in CI_VALUES]
GRADE_OK = 10

# (check id, the finding's summary) -> why we keep the chart as it is.
REJECTED: dict[tuple[str, str], str] = {
    (
        "container-resources",
        "CPU limit is not set",
    ): "CPU limits throttle a busy worker even on an idle node; requests already place pods.",
    (
        "container-ephemeral-storage-request-and-limit",
        "Ephemeral Storage limit is not set",
    ): "the root is read-only; what handlers write to emptyDirs depends on the user's handlers.",
    (
        "container-ephemeral-storage-request-and-limit",
        "Ephemeral Storage request is not set",
    ): "as for the limit: no default fits every user's handlers; users set it in resources.",
    (
        "container-image-pull-policy",
        "ImagePullPolicy is not set to Always",
    ): "images are pinned by tag (or digest); Always breaks air-gapped and locally loaded nodes.",
    (
        "pod-networkpolicy",
        "The pod does not have a matching NetworkPolicy",
    ): "only the Jobs (migrations, helm test) have none: they take no connections at all.",
    (
        "pod-networkpolicy",
        "The pod does not have a matching egress NetworkPolicy",
    ): "egress (DB, DNS, the API server, handlers' SMTP and services) varies: cluster default.",
    (
        "container-security-context-user-group-id",
        "The container is running with a low user ID",
    ): "the bundled PostgreSQL image's postgres user is uid 999; our own image runs as 10001.",
    (
        "container-security-context-user-group-id",
        "The container running with a low group ID",
    ): "the bundled PostgreSQL image's postgres group is gid 999; our own image uses 10001.",
    (
        "deployment-replicas",
        "Deployment few replicas",
    ): "workers are scaled (from 0) by our controller; API and controller replicas are values.",
    (
        "deployment-has-host-podantiaffinity",
        "Deployment does not have a host podAntiAffinity set",
    ): "single-replica defaults gain nothing from it; affinity is a value for HA installs.",
}


@pytest.fixture(scope="module")
def kube_score() -> Path:
    return require_binaries("kube-score")["kube-score"]


def findings(kube_score: Path, manifest: Path) -> list[tuple[str, str, str]]:
    """(object, check id, summary) for every check kube-score does not grade OK."""
    out = subprocess.run(
        [str(kube_score), "score", "--output-format", "json", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # kube-score exits 1 when it has findings; anything else (or no JSON) is its own failure
    assert out.returncode in (0, 1), out.stderr
    result: list[tuple[str, str, str]] = []
    objects: list[dict[str, Any]] = json.loads(out.stdout)
    for obj in objects:
        name = f"{obj['type_meta']['kind']}/{obj['object_name']}"
        for check in obj["checks"]:
            if check["skipped"] or check["grade"] >= GRADE_OK:
                continue
            for comment in check["comments"] or [{"summary": check["check"]["name"]}]:
                result.append((name, check["check"]["id"], comment["summary"]))
    return result


@pytest.fixture(scope="module")
def all_findings(
    kube_score: Path, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[str, str, str]]]:
    found = {}
    directory = tmp_path_factory.mktemp("kube-score")
    for path, name in zip(CI_VALUES, CI_NAMES, strict=True):
        chart = str(path.parent.parent)
        out = helm.run(
            "template", "jq", chart, "--kube-version", KUBE_VERSION,
            "--values", str(SECRETS_VALUES), "--values", str(path),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        manifest = directory / f"{name}.yaml"
        manifest.write_text(out.stdout)
        found[name] = findings(kube_score, manifest)
    return found


@pytest.mark.parametrize("name", CI_NAMES)
def test_kube_score_has_no_finding_we_have_not_answered(
    all_findings: dict[str, list[tuple[str, str, str]]], name: str
) -> None:
    open_findings = [f for f in all_findings[name] if (f[1], f[2]) not in REJECTED]
    assert not open_findings, "\n".join(" | ".join(f) for f in open_findings)


def test_every_rejection_still_answers_a_finding(
    all_findings: dict[str, list[tuple[str, str, str]]],
) -> None:
    """A rejection nothing triggers any more is dead; drop it so the list stays honest."""
    seen = {(f[1], f[2]) for found in all_findings.values() for f in found}
    assert not set(REJECTED) - seen, set(REJECTED) - seen


def test_kube_score_catches_identical_probes(kube_score: Path, tmp_path: Path) -> None:
    """The check that found our identical worker probes still bites (so the test can fail)."""
    probe = {"httpGet": {"path": "/healthz", "port": 9100}}
    manifest = tmp_path / "bad.yaml"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad", "labels": {"app": "bad"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "x:1",
                    "livenessProbe": probe,
                    "readinessProbe": probe,
                }
            ]
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad"},
        "spec": {"selector": {"app": "bad"}, "ports": [{"port": 9100}]},
    }
    manifest.write_text(json.dumps(pod) + "\n---\n" + json.dumps(service))
    assert any(f[1] == "pod-probes-identical" for f in findings(kube_score, manifest))
