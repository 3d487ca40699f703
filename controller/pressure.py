"""Database pressure: when more workers cannot help, scale-up is held.

A transaction that holds back the xmin horizon keeps every dead row visible to the claims'
index scans (a claim goes from milliseconds to a minute), and a server with no free
connection refuses the new workers outright. Either way, more replicas add load and no
throughput, so past `jobqueue.dev/db-pressure-seconds` (or with no headroom) the decision is
held at the current replicas, naming the session to blame. Scale-down is never held, and a
pool at zero may still start one replica under a pinned horizon (slow work beats none).

Pure, like controller.policy and controller.capacity: controller.pressure_guard measures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from controller.policy import Decision, Reason


@dataclass(frozen=True)
class Blocker:
    """The oldest transaction holding back the horizon."""

    pid: int | None  # None: a prepared transaction, which has no session
    application: str  # a prepared transaction's gid
    state: str
    age_seconds: float


@dataclass(frozen=True)
class DatabasePressure:
    oldest: Blocker | None
    max_connections: int
    reserved_connections: int  # for superusers (and PostgreSQL 16's reserved_connections)
    client_connections: int
    sees_all: bool = True  # False: the role sees only its own role's sessions' horizons

    @property
    def headroom(self) -> int:
        """Connections a new client can still open."""
        return self.max_connections - self.reserved_connections - self.client_connections


@dataclass(frozen=True)
class Hold:
    """Why scale-up is held: the pinning session past the threshold, no headroom, or both."""

    pinned: Blocker | None
    no_headroom: bool
    summary: str
    detail: dict[str, Any]


def describe_blocker(blocker: Blocker) -> str:
    who = f"pid {blocker.pid}" if blocker.pid is not None else "a prepared transaction"
    application = blocker.application or "(none)"
    return (
        f"{who} (application {application!r}, state {blocker.state!r}, "
        f"transaction age {blocker.age_seconds:.0f} s)"
    )


def pressure_hold(
    pressure: DatabasePressure | None, threshold_seconds: float, connections_per_replica: int
) -> Hold | None:
    """The hold that `pressure` calls for, or None when the database can take more workers."""
    if pressure is None:
        return None
    oldest = pressure.oldest
    pinned = oldest if oldest is not None and oldest.age_seconds >= threshold_seconds else None
    no_headroom = pressure.headroom < connections_per_replica
    if pinned is None and not no_headroom:
        return None
    reasons = []
    detail: dict[str, Any] = {"thresholdSeconds": threshold_seconds}
    if pinned is not None:
        reasons.append(
            f"the xmin horizon is held by {describe_blocker(pinned)}, past {threshold_seconds:g} s"
        )
        detail.update(
            pid=pinned.pid,
            application=pinned.application,
            state=pinned.state,
            ageSeconds=round(pinned.age_seconds),
        )
    if no_headroom:
        reasons.append(
            f"no connection headroom ({pressure.client_connections} clients of "
            f"{pressure.max_connections} connections, {pressure.reserved_connections} reserved; "
            f"a replica needs {connections_per_replica})"
        )
        detail["headroom"] = pressure.headroom
    if not pressure.sees_all:
        detail["seesAllSessions"] = False
    summary = "; ".join(reasons)
    detail["summary"] = summary
    return Hold(pinned, no_headroom, summary, detail)


def hold_scale_up(decision: Decision, current: int, hold: Hold | None) -> Decision:
    """The decision with its scale-up held at `current` (reason database-pressure). From zero
    under a pinned horizon alone, one replica may still start: slow claims beat no claims,
    while with no headroom a new replica could not even connect."""
    if hold is None or decision.replicas <= current:
        return decision
    floor = current
    if current == 0 and not hold.no_headroom:
        floor = 1
    if floor >= decision.replicas:
        return decision
    return replace(decision, replicas=floor, reason=Reason.DATABASE_PRESSURE)
