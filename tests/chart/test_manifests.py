"""L0: manifests/ is the chart rendered by tools/render-manifests.py, and a valid kustomize base."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.chart.chart_support import pod_templates
from tests.chart.pod_security import restricted_violations
from tests.fixtures.tools import REPO_ROOT

MANIFESTS = REPO_ROOT / "manifests"
CLUSTER_SCOPED = {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
RENDER = ["tools/render-manifests.py"]
REGENERATE = ".venv/bin/python tools/render-manifests.py"


def rendered_files(out: Path, helm_bin: Path) -> dict[str, str]:
    subprocess.run(
        [sys.executable, *RENDER, "--helm", str(helm_bin), "--out", str(out)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return {path.name: path.read_text() for path in out.glob("*.yaml")}


def test_manifests_are_in_sync_with_the_chart(helm_bin: Path, tmp_path: Path) -> None:
    fresh = rendered_files(tmp_path, helm_bin)
    committed = {path.name: path.read_text() for path in MANIFESTS.glob("*.yaml")}
    assert sorted(committed) == sorted(fresh), f"manifests/ is out of date: run {REGENERATE}"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert stale == [], f"manifests/ is out of date ({', '.join(stale)}): run {REGENERATE}"


def test_kustomization_lists_every_object_file() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert kustomization["resources"] == files


def test_one_object_per_file_in_the_fixed_namespace() -> None:
    for path in MANIFESTS.glob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        [obj] = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert path.name == f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == "job-queue", path.name
        assert "helm.sh/hook" not in obj["metadata"].get("annotations", {}), path.name


def test_manifests_enforce_the_restricted_profile() -> None:
    objects = [yaml.safe_load(p.read_text()) for p in MANIFESTS.glob("*.yaml")]
    [namespace] = [o for o in objects if o["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for where, template in pod_templates(objects):
        assert restricted_violations(template) == [], where
        if template["spec"]["containers"][0]["name"] != "postgresql":
            [init] = template["spec"]["initContainers"]
            assert init["args"] == ["migrate"], where
