"""The plumbing of capacity-aware scaling: measures what controller.capacity's pure caps and
the wait-time target need, per Deployment, over the depth source's one connection.

Each tick, for each Deployment: the completion window gives the measured rate per replica
(for the wait-time target, and for a rate limit's cap); after the policy decides, the queue
limits and the connection budget are read and the tightest cap is applied. A cap that starts
binding, or binds at a new number, posts one Event. Nothing here ever blocks scaling: a read
that fails skips its cap for the tick, and a budget the role may not read is skipped with one
Warning Event until it can be read again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from controller import annotations as ann
from controller.capacity import (
    Cap,
    ConnectionUse,
    QueueLimits,
    bind,
    connection_cap,
    holding,
    limit_cap,
)
from controller.completion_rate import CompletionWindow, Finished
from controller.depth import DepthSource, DepthUnavailable
from controller.policy import Decision
from worker.db import capacity as capacity_sql

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 3  # the worker's own MAX_CONCURRENT_JOBS default
CONCURRENCY_ENV = "MAX_CONCURRENT_JOBS"
EVENT_REASONS = {"limit-capped": "LimitCapped", "db-connection-budget": "DBConnectionBudget"}
BUDGET_UNREADABLE = "ConnectionBudgetUnknown"

PostEvent = Callable[[Any, str, str, bool], Awaitable[None]]


def template_concurrency(body: Mapping[str, Any]) -> int | None:
    """MAX_CONCURRENT_JOBS as a literal value in the pod template's first container that sets
    it; None when absent or not a positive whole number (valueFrom cannot be resolved here)."""
    template = ((body.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in template.get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") == CONCURRENCY_ENV and "value" in variable:
                text = str(variable.get("value") or "").strip()
                return int(text) if text.isdecimal() and int(text) > 0 else None
    return None


def slots_per_replica(config: ann.DeploymentConfig, from_template: int | None) -> int:
    return from_template or config.capacity.concurrency or DEFAULT_SLOTS


@dataclass
class _Measured:
    window: CompletionWindow = field(default_factory=CompletionWindow)
    finished_after: datetime | None = None
    template_slots: int | None = None
    binding: tuple[str, int] | None = None  # the cap that bound last tick: reason, replicas
    budget_warned: bool = False
    cap: Cap | None = None


class CapacityGuard:
    def __init__(
        self,
        depth: DepthSource,
        *,
        timeout: float,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._depth = depth
        self._timeout = timeout
        self._window_seconds = window_seconds
        self._clock = clock
        self._measured: dict[tuple[str, str], _Measured] = {}

    def _of(self, key: tuple[str, str]) -> _Measured:
        if key not in self._measured:
            self._measured[key] = _Measured(CompletionWindow(self._window_seconds))
        return self._measured[key]

    # ---- inputs from the watch
    def observe(self, key: tuple[str, str], body: Mapping[str, Any]) -> None:
        self._of(key).template_slots = template_concurrency(body)

    def forget(self, key: tuple[str, str]) -> None:
        self._measured.pop(key, None)

    # ---- before the policy
    def slots(self, key: tuple[str, str], config: ann.DeploymentConfig) -> int:
        return slots_per_replica(config, self._of(key).template_slots)

    def rate_per_replica(self, key: tuple[str, str], config: ann.DeploymentConfig) -> float | None:
        return self._of(key).window.rate_per_replica(self.slots(key, config))

    async def measure(self, key: tuple[str, str], config: ann.DeploymentConfig) -> None:
        """Adds the jobs finished since the last read to the Deployment's window."""
        measured = self._of(key)
        since, span, timeout = measured.finished_after, self._window_seconds, self._timeout
        try:
            row = await self._depth.read(
                lambda c: capacity_sql.sum_jobs_finished(c, config.queues, since, span, timeout)
            )
        except DepthUnavailable:
            return  # the depth probe reports the outage; the window just misses one read
        if row["last_finished_at"] is not None:
            measured.finished_after = row["last_finished_at"]
        sample = Finished(self._clock(), row["jobs"], row["run_seconds"])
        measured.window = measured.window.add(sample)

    # ---- after the policy
    async def bind(
        self, ref: Any, config: ann.DeploymentConfig, decision: Decision, post_event: PostEvent
    ) -> tuple[Decision, Cap | None]:
        key = (ref.namespace, ref.name)
        measured = self._of(key)
        if holding(decision):  # nothing to cap, so nothing to read (the database may be down)
            measured.cap = None
            return decision, None
        caps: list[Cap | None] = [await self._limit_cap(config, measured)]
        caps.append(await self._connection_cap(ref, config, measured, post_event))
        bound, cap = bind(decision, caps)
        measured.cap = cap
        binding = (cap.reason.value, cap.replicas) if cap else None
        if binding != measured.binding:
            measured.binding = binding
            if cap is not None:
                message = (
                    f"Capped at {cap.replicas} replicas (the policy asks for "
                    f"{decision.replicas}), {cap.reason.value}: {cap.summary}"
                )
                log.info(message, extra={"deployment": f"{ref.namespace}/{ref.name}"})
                await post_event(ref, EVENT_REASONS[cap.reason.value], message, False)
        return bound, cap

    def status(self, key: tuple[str, str]) -> dict[str, Any] | None:
        """What the status annotation shows of the binding cap (None when none binds)."""
        cap = self._of(key).cap
        if cap is None:
            return None
        return {"reason": cap.reason.value, "summary": cap.summary, **cap.detail}

    async def _limit_cap(self, config: ann.DeploymentConfig, measured: _Measured) -> Cap | None:
        queues, timeout = config.queues, self._timeout
        try:
            rows = await self._depth.read(
                lambda c: capacity_sql.select_queues_limits(c, queues, timeout)
            )
        except DepthUnavailable:
            return None
        limits = {
            row["name"]: QueueLimits(
                row["concurrency_limit"], row["rate_limit_jobs"], row["rate_limit_per_seconds"]
            )
            for row in rows
        }
        slots = slots_per_replica(config, measured.template_slots)
        return limit_cap(config.queues, limits, slots, measured.window.mean_run_seconds())

    async def _connection_cap(
        self, ref: Any, config: ann.DeploymentConfig, measured: _Measured, post_event: PostEvent
    ) -> Cap | None:
        found = await self._connection_use(ref.name)
        if isinstance(found, str):
            if not measured.budget_warned:
                measured.budget_warned = True
                message = (
                    f"cannot read the database's connection settings ({found}); scaling "
                    "without the connection budget cap until they can be read"
                )
                log.warning(message, extra={"deployment": f"{ref.namespace}/{ref.name}"})
                await post_event(ref, BUDGET_UNREADABLE, message, True)
            return None
        measured.budget_warned = False
        if found is None:
            return None
        capacity = config.capacity
        return connection_cap(
            found, capacity.db_reserved_connections, capacity.db_connections_per_replica
        )

    async def _connection_use(self, deployment: str) -> ConnectionUse | str | None:
        """The connection use; a string saying why the role may not read it; None when the
        database cannot be reached this tick (the depth probe says so already)."""
        timeout = self._timeout

        async def read(conn: asyncpg.Connection) -> ConnectionUse | str:
            try:
                row = await capacity_sql.select_connections_budget(conn, deployment, timeout)
            except asyncpg.InsufficientPrivilegeError as exc:
                return str(exc)  # caught here: the connection stays open for everything else
            return ConnectionUse(
                row["max_connections"], row["superuser_reserved"], row["reserved"], row["not_ours"]
            )

        try:
            return await self._depth.read(read)
        except DepthUnavailable:
            return None
