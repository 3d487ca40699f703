"""What the control loop tells people: Events on the Deployment, the status annotation, the
Warnings for a bad annotation or an unknown depth, and the per-Deployment gauges."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from controller.depth import Depth, DepthUnavailable
from controller.metrics import ControllerMetrics
from controller.policy import Decision
from controller.scaler import Scaler
from controller.tracked import Tracked

log = logging.getLogger(__name__)

# rate-limited in the status: they move with the depth, tick after tick
_VOLATILE = ("depth", "running", "oldestReadySeconds", "reason", "capacity", "databasePressure")


class Report:
    def __init__(
        self,
        scaler: Scaler,
        metrics: ControllerMetrics,
        *,
        status_interval: float,
        clock: Callable[[], float],
    ) -> None:
        self._scaler = scaler
        self._metrics = metrics
        self._status_interval = status_interval
        self._clock = clock

    async def event(
        self, tracked: Tracked, reason: str, message: str, warning: bool = False
    ) -> None:
        try:
            await self._scaler.post_event(tracked.ref, reason, message, warning=warning)
        except (TimeoutError, ApiException, OSError) as exc:
            log.warning("could not post event %s: %s", reason, exc)
            self._metrics.errors.labels("event").inc()

    async def warn_invalid(self, tracked: Tracked) -> None:
        if tracked.invalid_warned or tracked.invalid is None:
            return
        if tracked.config is None:
            message = f"{tracked.invalid}; leaving the Deployment alone until it is fixed"
        else:
            message = f"{tracked.invalid}; keeping the last good configuration until it is fixed"
        log.warning(
            message, extra={"deployment": tracked.name, "annotation": tracked.invalid.annotation}
        )
        self._metrics.errors.labels("annotation").inc()
        await self.event(tracked, "InvalidAnnotation", message, warning=True)
        tracked.invalid_warned = True

    async def warn_depth_unknown(self, tracked: Tracked, exc: DepthUnavailable) -> None:
        if tracked.depth_warned:
            return
        message = f"{exc}; holding {tracked.replicas} replicas until the depth is known"
        log.warning(message, extra={"deployment": tracked.name})
        await self.event(tracked, "DepthUnknown", message, warning=True)
        tracked.depth_warned = True

    async def write_status(
        self,
        tracked: Tracked,
        decision: Decision,
        depth: Depth | None,
        extra: dict[str, Any],
    ) -> None:
        """The jobqueue.dev/status annotation; `extra` adds what binds (capacity, pressure)."""
        status: dict[str, Any] = {
            "depth": depth.ready if depth else None,
            "running": depth.running if depth else None,
            "oldestReadySeconds": (
                round(depth.oldest_ready_seconds)
                if depth and depth.oldest_ready_seconds is not None
                else None
            ),
            "desired": decision.replicas,
            "actual": tracked.replicas,
            "lastScaleTime": tracked.last_scale_time,
            "reason": decision.reason.value,
        }
        status.update({key: value for key, value in extra.items() if value is not None})
        if depth is not None and depth.paused:
            status["pausedQueues"] = list(depth.paused)
        if depth is not None and depth.due_schedules:
            status["dueSchedules"] = depth.due_schedules
        if status == tracked.status:
            return
        previous = tracked.status or {}
        # a key that comes or goes (a cap or a hold that starts or ends) is news: written now
        settled = previous.keys() == status.keys() and all(
            previous.get(k) == v for k, v in status.items() if k not in _VOLATILE
        )
        now = self._clock()
        if settled and now - tracked.status_written_at < self._status_interval:
            return  # only the depth moved: write it at most once per status interval
        await self._scaler.write_status(tracked.ref, status)
        tracked.status, tracked.status_written_at = status, now

    def record(self, tracked: Tracked, decision: Decision, depth: Depth | None) -> None:
        labels = tracked.key
        self._metrics.desired.labels(*labels).set(decision.replicas)
        self._metrics.actual.labels(*labels).set(tracked.replicas)
        if depth is not None:
            self._metrics.ready.labels(*labels).set(depth.ready)
            self._metrics.running.labels(*labels).set(depth.running)
            self._metrics.oldest.labels(*labels).set(depth.oldest_ready_seconds or 0)
