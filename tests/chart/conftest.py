"""Fixtures of the chart tests: the built helm, and each ci values file rendered once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.chart_support import Helm, RenderedCI


@pytest.fixture(scope="session")
def helm(helm_bin: Path) -> Helm:
    return Helm(helm_bin)


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> RenderedCI:
    return RenderedCI(helm)
