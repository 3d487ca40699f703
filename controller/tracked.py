"""What the control loop knows of one labelled Deployment between ticks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller import annotations as ann
from controller.first_replica import HeadStart
from controller.policy import PolicyState
from controller.scaler import DeploymentRef


@dataclass
class Tracked:
    ref: DeploymentRef
    replicas: int
    selector: dict[str, Any]
    generation: int  # of the spec our `replicas` comes from; older watch events are stale
    fingerprint: tuple[tuple[str, str], ...]
    config: ann.DeploymentConfig | None
    invalid: ann.InvalidAnnotation | None
    state: PolicyState = field(default_factory=PolicyState)
    invalid_warned: bool = False
    depth_warned: bool = False
    paused_noted: bool = False
    last_scale_time: str | None = None
    status: dict[str, Any] | None = None  # as last written (or found on the object)
    status_written_at: float = -math.inf
    head_start: HeadStart | None = None  # from zero, the first replica's (first_replica)

    @property
    def key(self) -> tuple[str, str]:
        return self.ref.namespace, self.ref.name

    @property
    def name(self) -> str:
        return f"{self.ref.namespace}/{self.ref.name}"


def parse_config(
    annotations: Mapping[str, str],
) -> tuple[ann.DeploymentConfig | None, ann.InvalidAnnotation | None]:
    try:
        return ann.parse(annotations), None
    except ann.InvalidAnnotation as exc:
        return None, exc
