"""The plumbing of the database-pressure hold (controller.pressure is the policy): one read of
the database's health per tick, over the depth source's one connection, then per Deployment
the hold, its Events and what the status annotation shows.

Events: a Warning `DatabasePressure` when a hold starts binding (or the session to blame
changes), naming the session; a Normal `DatabasePressureEnded` once the pressure is gone and
scaling resumes. A read that fails (or that the role may not make) holds nothing: the depth
probe reports an outage, and a refused read is said once in a Warning.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from controller import annotations as ann
from controller.capacity import holding
from controller.depth import DepthSource, DepthUnavailable
from controller.metrics import ControllerMetrics
from controller.policy import Decision
from controller.pressure import (
    Blocker,
    DatabasePressure,
    Hold,
    hold_scale_up,
    pressure_hold,
)
from worker.db import pressure as pressure_sql

log = logging.getLogger(__name__)

HELD_EVENT = "DatabasePressure"
ENDED_EVENT = "DatabasePressureEnded"
UNREADABLE_EVENT = "DatabasePressureUnknown"

PostEvent = Callable[[Any, str, str, bool], Awaitable[None]]


@dataclass
class _Shown:
    hold: Hold | None = None  # the pressure over this Deployment's threshold, if any
    announced: tuple[Any, ...] | None = None  # the hold an Event last named
    unreadable_warned: bool = False


def _identity(hold: Hold) -> tuple[Any, ...]:
    pinned = hold.pinned
    return (pinned.pid, pinned.application) if pinned else (None, None), hold.no_headroom


class PressureGuard:
    def __init__(self, depth: DepthSource, *, timeout: float, metrics: ControllerMetrics) -> None:
        self._depth = depth
        self._timeout = timeout
        self._metrics = metrics
        self.pressure: DatabasePressure | None = None
        self._refused: str | None = None  # why the role may not read it
        self._shown: dict[tuple[str, str], _Shown] = {}

    def forget(self, key: tuple[str, str]) -> None:
        self._shown.pop(key, None)

    async def read(self) -> None:
        """Once per tick, whatever the number of Deployments: the database is one."""
        timeout = self._timeout

        async def read(conn: asyncpg.Connection) -> DatabasePressure | str:
            try:
                row = await pressure_sql.select_database_pressure(conn, timeout)
            except asyncpg.InsufficientPrivilegeError as exc:
                return str(exc)  # caught here: the connection stays open for the rest
            oldest = None
            if row["age_seconds"] is not None:
                oldest = Blocker(
                    row["pid"], row["application_name"] or "", row["state"] or "",
                    row["age_seconds"],
                )  # fmt: skip
            return DatabasePressure(
                oldest,
                row["max_connections"],
                row["reserved_connections"],
                row["client_connections"],
                row["sees_all"],
            )

        try:
            found = await self._depth.read(read)
        except DepthUnavailable:
            found = None
        self._refused = found if isinstance(found, str) else None
        self.pressure = found if isinstance(found, DatabasePressure) else None
        if self.pressure is not None:
            oldest = self.pressure.oldest
            self._metrics.oldest_transaction.set(oldest.age_seconds if oldest else 0)
            self._metrics.connection_headroom.set(self.pressure.headroom)

    async def hold(
        self,
        ref: Any,
        config: ann.DeploymentConfig,
        decision: Decision,
        current: int,
        post_event: PostEvent,
    ) -> Decision:
        key = (ref.namespace, ref.name)
        shown = self._shown.setdefault(key, _Shown())
        await self._warn_refused(ref, shown, post_event)
        capacity = config.capacity
        hold = pressure_hold(
            self.pressure, capacity.db_pressure_seconds, capacity.db_connections_per_replica
        )
        if self.pressure is None and self._refused is None:
            hold = shown.hold  # the read failed this tick: what held, holds
        shown.hold = hold
        held = decision if holding(decision) else hold_scale_up(decision, current, hold)
        name = f"{ref.namespace}/{ref.name}"
        if held is not decision and hold is not None and _identity(hold) != shown.announced:
            shown.announced = _identity(hold)
            message = (
                f"Holding scale-up at {held.replicas} replicas (the policy asks for "
                f"{decision.replicas}), database-pressure: {hold.summary}. More workers "
                "cannot help until it ends; scaling resumes by itself then"
            )
            log.warning(message, extra={"deployment": name})
            await post_event(ref, HELD_EVENT, message, True)
        elif hold is None and shown.announced is not None:
            shown.announced = None
            message = "The database pressure ended; scaling resumes"
            log.info(message, extra={"deployment": name})
            await post_event(ref, ENDED_EVENT, message, False)
        return held

    def status(self, key: tuple[str, str]) -> dict[str, Any] | None:
        """What the status annotation shows of the pressure over this Deployment's threshold."""
        shown = self._shown.get(key)
        return dict(shown.hold.detail) if shown and shown.hold else None

    async def _warn_refused(self, ref: Any, shown: _Shown, post_event: PostEvent) -> None:
        if self._refused is None:
            shown.unreadable_warned = False
            return
        if shown.unreadable_warned:
            return
        shown.unreadable_warned = True
        message = (
            f"cannot read the database's activity ({self._refused}); scaling without the "
            "database-pressure hold until it can be read (grant pg_read_all_stats, or "
            "pg_monitor, to the controller's role)"
        )
        log.warning(message, extra={"deployment": f"{ref.namespace}/{ref.name}"})
        await post_event(ref, UNREADABLE_EVENT, message, True)
