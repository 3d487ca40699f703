"""Fixtures of the controller's L3 tests: the controllers a test starts (stopped after it), and
a kubeconfig bound only to controller/rbac.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.kube import ControlPlane
from tests.k8s import harness as h


@pytest.fixture
def controllers() -> Iterator[list[h.Controller]]:
    started: list[h.Controller] = []
    yield started
    for controller in started:
        controller.stop()


@pytest.fixture
def plane(control_plane: ControlPlane) -> ControlPlane:
    """The session's control plane, by the short name the tests use for it."""
    return control_plane


@pytest.fixture
def kubeconfig(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Path:
    return h.restricted_kubeconfig(control_plane, namespace, tmp_path / "controller.kubeconfig")
