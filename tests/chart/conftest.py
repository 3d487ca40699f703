"""Fixtures of the chart tests: the built helm, and each ci values file rendered once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.chart_support import CI_VALUES, Helm


@pytest.fixture(scope="session")
def helm(helm_bin: Path) -> Helm:
    return Helm(helm_bin)


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


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> RenderedCI:
    return RenderedCI(helm)
