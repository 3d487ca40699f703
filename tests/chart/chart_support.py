"""Running the built helm over charts/job-queue (rendering, or against a live cluster), and
reading what it renders."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.kube import ControlPlane
from tests.fixtures.tools import REPO_ROOT

CHART = REPO_ROOT / "charts" / "job-queue"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# Every Secret named, as helm template needs (it cannot read the cluster, so the chart refuses
# to generate one); given before the other values files, which may name their own.
SECRETS_VALUES = Path(__file__).with_name("existing-secrets-values.yaml")
RELEASE = "jq"
NAMESPACE = "jobs"
FULLNAME = f"{RELEASE}-job-queue"
# Objects that hold a pod template, and where it is.
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pinned(name: str) -> str:
    for line in (REPO_ROOT / "tools" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise KeyError(name)


KUBE_VERSION = pinned("KUBERNETES_VERSION")


def chart_values() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))


def ci_values(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text()) or {})


def app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=timeout
        )

    def on(self, cluster: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
        """helm against a live cluster (install, upgrade, ...); fails the test if helm does."""
        out = self.run("--kubeconfig", str(cluster.kubeconfig), *args, timeout=600)
        assert out.returncode == 0, f"helm {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
        return out

    def _template(
        self,
        values_files: tuple[Path, ...],
        values: Mapping[str, Any] | None,
        release: str,
        namespace: str,
        extra: tuple[str, ...],
        secrets: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as inline:
            yaml.safe_dump(dict(values or {}), inline)
            inline.flush()
            args = ["template", release, str(CHART), "--namespace", namespace]
            args += ["--kube-version", KUBE_VERSION]
            for path in (SECRETS_VALUES,) if secrets else ():
                args += ["--values", str(path)]
            for path in values_files:
                args += ["--values", str(path)]
            args += ["--values", inline.name, *extra]
            return self.run(*args)

    def template(
        self,
        *values_files: Path,
        values: Mapping[str, Any] | None = None,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
        extra: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """The rendered objects (helm test hooks included); fails the test if helm does."""
        out = self._template(values_files, values, release, namespace, extra)
        assert out.returncode == 0, f"helm template failed:\n{out.stderr}"
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    def template_error(
        self, *values_files: Path, values: Mapping[str, Any] | None = None, secrets: bool = True
    ) -> str:
        """helm's error message, for values it must reject (`secrets`: with every Secret named,
        as template renders)."""
        out = self._template(values_files, values, RELEASE, NAMESPACE, (), secrets)
        assert out.returncode != 0, f"helm template accepted the values:\n{out.stdout[:2000]}"
        return out.stderr


class RenderedCI:
    """charts/job-queue/ci/<name>-values.yaml rendered, each at most once per session."""

    def __init__(self, helm: Helm) -> None:
        self._helm = helm
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, name: str) -> list[dict[str, Any]]:
        if name not in self._cache:
            path = next(p for p in CI_VALUES if p.name == f"{name}-values.yaml")
            self._cache[name] = self._helm.template(path)
        return self._cache[name]


def enforce_restricted(cluster: ControlPlane, namespace: str) -> None:
    """Label the namespace to enforce the restricted Pod Security profile, and check it bites."""
    cluster.kubectl(
        "label", "namespace", namespace, "--overwrite",
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )  # fmt: skip
    # Enforcement is real: a pod with no security context is refused.
    probe = cluster.kubectl(
        "run", "psa-probe", "--image=busybox", "-n", namespace, "--dry-run=server", check=False
    )
    assert probe.returncode != 0 and "violates PodSecurity" in probe.stderr, probe.stderr


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [obj for obj in by_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_templates(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """("Kind/name", pod template) for every object that makes pods."""
    for obj in objects:
        if obj["kind"] in POD_TEMPLATE_KINDS:
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]
        elif obj["kind"] == "Pod":
            yield f"Pod/{obj['metadata']['name']}", obj


def main_container(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"]["containers"][0])


def all_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *pod_spec.get("initContainers", []),
        *pod_spec.get("containers", []),
        *pod_spec.get("ephemeralContainers", []),
    ]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
