"""The record of scaling decisions in the scaling_decisions table, which the console reads.

One row per change of replicas, or of what binds them (a cap, a paused queue), so a steady
Deployment writes nothing. Old rows are pruned by age from the same connection. A failed write
is logged and counted, never retried and never in the way of scaling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from controller.depth import DepthSource, DepthUnavailable
from worker.db import scaling_decisions as decisions_sql

log = logging.getLogger(__name__)

# reasons that say something other than demand holds the replicas where they are
BINDING_REASONS = frozenset(
    {"limit-capped", "db-connection-budget", "queue-paused", "database-pressure", "busy-replicas"}
)
PRUNE_EVERY = 300.0


@dataclass(frozen=True)
class Recorded:
    replicas: int
    binding: str | None


def binding_of(reason: str) -> str | None:
    return reason if reason in BINDING_REASONS else None


def worth_recording(last: Recorded | None, before: int, after: int, reason: str) -> bool:
    """A change of replicas, or of the binding reason since the last row."""
    if after != before:
        return True
    return binding_of(reason) != (last.binding if last else None)


class DecisionLog:
    def __init__(
        self,
        depth: DepthSource,
        *,
        keep_seconds: float,
        timeout: float,
        on_error: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._depth = depth
        self._keep = keep_seconds
        self._timeout = timeout
        self._on_error = on_error
        self._clock = clock
        self._last: dict[tuple[str, str], Recorded] = {}
        self._pruned_at = -PRUNE_EVERY

    def forget(self, key: tuple[str, str]) -> None:
        self._last.pop(key, None)

    async def record(
        self,
        key: tuple[str, str],
        before: int,
        after: int,
        reason: str,
        detail: Mapping[str, Any],
    ) -> None:
        if not worth_recording(self._last.get(key), before, after, reason):
            return
        namespace, name, timeout = key[0], key[1], self._timeout
        try:
            await self._depth.read(
                lambda c: decisions_sql.insert_scaling_decisions(
                    c, namespace, name, before, after, reason, detail, timeout
                )
            )
        except DepthUnavailable as exc:
            log.warning("could not record a scaling decision: %s", exc)
            self._on_error()
            return
        self._last[key] = Recorded(after, binding_of(reason))
        await self._prune()

    async def _prune(self) -> None:
        now = self._clock()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        keep, timeout = self._keep, self._timeout
        try:
            await self._depth.read(
                lambda c: decisions_sql.delete_scaling_decisions_older(c, keep, timeout)
            )
        except DepthUnavailable as exc:
            log.warning("could not prune old scaling decisions: %s", exc)
            self._on_error()
