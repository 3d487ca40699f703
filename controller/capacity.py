"""Capacity caps on the policy's decision: replicas that a queue's limits or the database's
connection budget cannot use add nothing, so the decision is the smallest of the three.

Pure, like controller.policy: the caps are functions of what was measured, and `bind` applies
the tightest one to a Decision. The controller's plumbing (controller.capacity_guard) measures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from controller.policy import Decision, Reason

# Decisions that hold replicas as they are: a cap must not turn them into a scale-down.
_HOLDING = (Reason.PAUSED, Reason.DEPTH_UNKNOWN)


@dataclass(frozen=True)
class QueueLimits:
    """A queue's row in the queues table; a queue without a row has no limits."""

    concurrency_limit: int | None = None
    rate_limit_jobs: int | None = None
    rate_limit_per_seconds: float | None = None


@dataclass(frozen=True)
class ConnectionUse:
    """The server's connection settings and what is connected now."""

    max_connections: int
    superuser_reserved: int
    reserved: int  # PostgreSQL 16's reserved_connections; 0 before
    not_ours: int  # client connections that are not this Deployment's workers


@dataclass(frozen=True)
class Cap:
    reason: Reason
    replicas: int
    detail: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


def queue_slots(limits: QueueLimits, mean_run_seconds: float | None) -> int | None:
    """Job slots the queue can keep busy at once; None when unlimited (or, for a rate limit,
    when no run time was measured yet: the rate alone says nothing about concurrency)."""
    slots: list[int] = []
    if limits.concurrency_limit is not None:
        slots.append(limits.concurrency_limit)
    if limits.rate_limit_jobs and limits.rate_limit_per_seconds and mean_run_seconds:
        # Little's law: starts per second x seconds per job = jobs running at once
        per_second = limits.rate_limit_jobs / limits.rate_limit_per_seconds
        slots.append(max(1, math.ceil(per_second * mean_run_seconds)))
    return min(slots) if slots else None


def limit_cap(
    queues: Sequence[str],
    limits: Mapping[str, QueueLimits],
    slots_per_replica: int,
    mean_run_seconds: float | None,
) -> Cap | None:
    """ceil(usable slots / slots per replica) over the Deployment's queues; None as soon as
    one queue is unlimited, since its jobs can use any number of replicas."""
    per_queue: dict[str, int] = {}
    for queue in queues:
        slots = queue_slots(limits.get(queue, QueueLimits()), mean_run_seconds)
        if slots is None:
            return None
        per_queue[queue] = slots
    total = sum(per_queue.values())
    replicas = math.ceil(total / slots_per_replica)
    detail: dict[str, Any] = {
        "cap": replicas,
        "slots": total,
        "slotsPerReplica": slots_per_replica,
        "queues": {
            queue: _queue_detail(limits.get(queue, QueueLimits()), per_queue[queue])
            for queue in queues
        },
    }
    if mean_run_seconds is not None:
        detail["meanRunSeconds"] = round(mean_run_seconds, 3)
    parts = ", ".join(f"{queue} {slots}" for queue, slots in per_queue.items())
    summary = f"{total} usable job slots ({parts}) / {slots_per_replica} per replica = {replicas}"
    return Cap(Reason.LIMIT_CAPPED, replicas, detail, summary)


def _queue_detail(limits: QueueLimits, slots: int) -> dict[str, Any]:
    shown: dict[str, Any] = {"slots": slots}
    if limits.concurrency_limit is not None:
        shown["concurrencyLimit"] = limits.concurrency_limit
    if limits.rate_limit_jobs is not None and limits.rate_limit_per_seconds is not None:
        shown["rateLimit"] = f"{limits.rate_limit_jobs}/{limits.rate_limit_per_seconds:g}s"
    return shown


def connection_cap(use: ConnectionUse, reserved_for_others: int, per_replica: int) -> Cap:
    """(max_connections - reserved - connections not ours) / connections per replica."""
    free = (
        use.max_connections
        - use.superuser_reserved
        - use.reserved
        - reserved_for_others
        - use.not_ours
    )
    replicas = max(0, free // per_replica)
    detail = {
        "cap": replicas,
        "maxConnections": use.max_connections,
        "superuserReserved": use.superuser_reserved + use.reserved,
        "reservedForOthers": reserved_for_others,
        "notOurs": use.not_ours,
        "perReplica": per_replica,
    }
    summary = (
        f"max_connections {use.max_connections} - superuser reserved "
        f"{use.superuser_reserved + use.reserved} - reserved {reserved_for_others} - "
        f"in use by others {use.not_ours} = {max(free, 0)}, / {per_replica} per replica "
        f"= {replicas}"
    )
    return Cap(Reason.DB_CONNECTION_BUDGET, replicas, detail, summary)


def holding(decision: Decision) -> bool:
    """Paused or depth unknown: replicas stay as they are, whatever the caps say."""
    return decision.reason in _HOLDING


def bind(decision: Decision, caps: Sequence[Cap | None]) -> tuple[Decision, Cap | None]:
    """The decision lowered to the tightest cap below it, and that cap (None if none binds).
    A held decision (paused, depth unknown) stays held: holding is what those promise."""
    if holding(decision):
        return decision, None
    binding: Cap | None = None
    for cap in caps:
        if cap is not None and cap.replicas < decision.replicas:
            if binding is None or cap.replicas < binding.replicas:
                binding = cap
    if binding is None:
        return decision, None
    return replace(decision, replicas=binding.replicas, reason=binding.reason), binding
