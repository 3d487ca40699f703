"""The annotation contract of autoscaled Deployments (see DESIGN.md), parsed and validated."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.policy import ScalingConfig

PREFIX = "jobqueue.dev/"
AUTOSCALE_LABEL = PREFIX + "autoscale"
QUEUES = PREFIX + "queues"
MIN_REPLICAS = PREFIX + "min-replicas"
MAX_REPLICAS = PREFIX + "max-replicas"
JOBS_PER_REPLICA = PREFIX + "jobs-per-replica"
ACTIVATION_JOBS = PREFIX + "activation-jobs"
SCALE_DOWN_DELAY = PREFIX + "scale-down-delay"
PAUSED = PREFIX + "paused"
TARGET_WAIT_SECONDS = PREFIX + "target-wait-seconds"
CONCURRENCY = PREFIX + "concurrency"
DB_CONNECTIONS_PER_REPLICA = PREFIX + "db-connections-per-replica"
DB_RESERVED_CONNECTIONS = PREFIX + "db-reserved-connections"
IDLE_REPLICAS = PREFIX + "idle-replicas"
DB_PRESSURE_SECONDS = PREFIX + "db-pressure-seconds"
STATUS = PREFIX + "status"
# the Deployments the controller manages, and the only ones `kubectl jobqueue` lists
LABEL_SELECTOR = f"{AUTOSCALE_LABEL}=true"
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

# The annotations that configure scaling; the controller's own status annotation is not one.
CONFIG_ANNOTATIONS = (
    QUEUES,
    MIN_REPLICAS,
    MAX_REPLICAS,
    JOBS_PER_REPLICA,
    ACTIVATION_JOBS,
    SCALE_DOWN_DELAY,
    PAUSED,
    TARGET_WAIT_SECONDS,
    CONCURRENCY,
    DB_CONNECTIONS_PER_REPLICA,
    DB_RESERVED_CONNECTIONS,
    IDLE_REPLICAS,
    DB_PRESSURE_SECONDS,
)

_QUEUE_NAME = re.compile(r"^\S{1,200}$")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}
_INT_LIMIT = 1_000_000


class InvalidAnnotation(ValueError):
    """An annotation's value breaks the contract; `annotation` names it."""

    def __init__(self, annotation: str, value: str, why: str) -> None:
        super().__init__(f"invalid annotation {annotation}={value!r}: {why}")
        self.annotation = annotation
        self.value = value


@dataclass(frozen=True)
class CapacityConfig:
    concurrency: int | None = None  # job slots per replica; None: the pod template's, else 3
    db_connections_per_replica: int = 3
    db_reserved_connections: int = 10
    # hold scale-up once the database's xmin horizon has been pinned this long
    db_pressure_seconds: float = 60.0


@dataclass(frozen=True)
class DeploymentConfig:
    queues: tuple[str, ...]
    scaling: ScalingConfig
    capacity: CapacityConfig = CapacityConfig()


def _integer(annotations: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = annotations.get(key)
    if raw is None:
        return default
    text = raw.strip()
    if not re.fullmatch(r"[+]?\d+", text):
        raise InvalidAnnotation(key, raw, "expected a whole number")
    value = int(text)
    if not minimum <= value <= _INT_LIMIT:
        raise InvalidAnnotation(key, raw, f"expected a number from {minimum} to {_INT_LIMIT}")
    return value


def _seconds(annotations: Mapping[str, str], key: str, default: float) -> float:
    raw = annotations.get(key)
    if raw is None:
        return default
    text = raw.strip().removesuffix("s")
    try:
        value = float(text)
    except ValueError:
        raise InvalidAnnotation(key, raw, "expected seconds, e.g. 60 or 60s") from None
    if not math.isfinite(value) or not 0 <= value <= 7 * 24 * 3600:
        raise InvalidAnnotation(key, raw, "expected seconds from 0 to one week")
    return value


def _boolean(annotations: Mapping[str, str], key: str) -> bool:
    raw = annotations.get(key)
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidAnnotation(key, raw, "expected true or false")


def _queues(annotations: Mapping[str, str]) -> tuple[str, ...]:
    raw = annotations.get(QUEUES)
    if raw is None:
        return ("default",)
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names:
        raise InvalidAnnotation(QUEUES, raw, "name at least one queue")
    for name in names:
        if not _QUEUE_NAME.match(name):
            raise InvalidAnnotation(QUEUES, raw, f"{name!r} is not a queue name")
    return tuple(sorted(set(names)))


def parse(annotations: Mapping[str, str] | None) -> DeploymentConfig:
    """The Deployment's scaling configuration; raises InvalidAnnotation naming the culprit."""
    annotations = annotations or {}
    minimum = _integer(annotations, MIN_REPLICAS, 0, 0)
    maximum = _integer(annotations, MAX_REPLICAS, 10, 1)
    if minimum > maximum:
        raise InvalidAnnotation(
            MIN_REPLICAS,
            annotations[MIN_REPLICAS] if MIN_REPLICAS in annotations else str(minimum),
            f"must not exceed {MAX_REPLICAS} ({maximum})",
        )
    return DeploymentConfig(
        queues=_queues(annotations),
        scaling=ScalingConfig(
            min_replicas=minimum,
            max_replicas=maximum,
            jobs_per_replica=_integer(annotations, JOBS_PER_REPLICA, 10, 1),
            activation_jobs=_integer(annotations, ACTIVATION_JOBS, 0, 0),
            scale_down_delay=_seconds(annotations, SCALE_DOWN_DELAY, 60.0),
            paused=_boolean(annotations, PAUSED),
            target_wait_seconds=_target_wait(annotations),
            idle_replicas=_integer(annotations, IDLE_REPLICAS, 0, 0),
        ),
        capacity=CapacityConfig(
            concurrency=_integer(annotations, CONCURRENCY, 0, 1) or None,
            db_connections_per_replica=_integer(annotations, DB_CONNECTIONS_PER_REPLICA, 3, 1),
            db_reserved_connections=_integer(annotations, DB_RESERVED_CONNECTIONS, 10, 0),
            db_pressure_seconds=_seconds(annotations, DB_PRESSURE_SECONDS, 60.0),
        ),
    )


def _target_wait(annotations: Mapping[str, str]) -> float | None:
    if TARGET_WAIT_SECONDS not in annotations:
        return None
    value = _seconds(annotations, TARGET_WAIT_SECONDS, 0.0)
    if value <= 0:
        raise InvalidAnnotation(
            TARGET_WAIT_SECONDS, annotations[TARGET_WAIT_SECONDS], "expected seconds above 0"
        )
    return value


def config_fingerprint(annotations: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The configuring annotations only, so the status annotation we write changes nothing."""
    annotations = annotations or {}
    return tuple((key, annotations[key]) for key in CONFIG_ANNOTATIONS if key in annotations)


def status_of(annotations: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The status the controller wrote (jobqueue.dev/status), or None when there is none or
    it is not a JSON object (someone edited it by hand)."""
    try:
        found = json.loads((annotations or {}).get(STATUS) or "")
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
