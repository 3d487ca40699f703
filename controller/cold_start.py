"""The timeline of a scale-up from zero, from the burst to the first claim, in the controller's
own metrics and log: where the seconds between a burst and its first job go.

The burst is when the oldest ready job became ready (the depth probe's oldest_ready_seconds,
read just before the decision). From it, in seconds:
- decision: the controller decided to scale up (woken by the jobs' NOTIFY, or its tick);
- scaled: /scale was written;
- podCreated: the first new pod's creationTimestamp (the API keeps whole seconds only);
- containerStarted, imported, connected, registered, firstClaim: the first worker to claim, as
  it reported its own start (workers.startup; its process start stands for the container's).
After the scale-up, the controller looks for that report at most once a second, for at most
FOLLOW_SECONDS; wall clocks are compared, as across any cluster's nodes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.depth import DepthSource, DepthUnavailable
from controller.metrics import COLD_START_PHASES, ControllerMetrics
from controller.scaler import DeploymentRef, Scaler
from worker.db import startups as startups_sql
from worker.db.capacity import pod_name_pattern

log = logging.getLogger(__name__)

PHASES = COLD_START_PHASES
FOLLOW_SECONDS = 300.0
LOOK_EVERY = 1.0
CLOCK_SLACK = 2.0  # a worker's clock may lag ours this much and still count as new
_REPORTED = {  # workers.startup's keys for the phases the worker reports
    "containerStarted": "processStarted",
    "imported": "imported",
    "connected": "connected",
    "registered": "registered",
    "firstClaim": "firstClaim",
}


def phase_seconds(
    burst_at: float,
    decided_at: float,
    scaled_at: float,
    pod_created_at: float | None,
    reported: Mapping[str, float],
) -> dict[str, float]:
    """Each phase as seconds after the burst (all moments are seconds since the epoch)."""
    found = {"decision": decided_at - burst_at, "scaled": scaled_at - burst_at}
    if pod_created_at is not None:
        found["podCreated"] = pod_created_at - burst_at
    for phase, key in _REPORTED.items():
        if key in reported:
            found[phase] = float(reported[key]) - burst_at
    return {phase: found[phase] for phase in PHASES if phase in found}


def earliest_creation(pods: Sequence[Any], since: float) -> float | None:
    """The earliest creationTimestamp of the pods made at or after `since` (whole seconds)."""
    times = []
    for pod in pods:
        created = pod.metadata.creation_timestamp
        if isinstance(created, datetime) and created.timestamp() >= int(since):
            times.append(created.timestamp())
    return min(times, default=None)


@dataclass
class _Open:
    ref: DeploymentRef
    selector: dict[str, Any]
    burst_at: float
    decided_at: float
    scaled_at: float
    opened: float  # monotonic
    next_look: float  # monotonic


class ColdStarts:
    def __init__(
        self,
        depth: DepthSource,
        scaler: Scaler,
        metrics: ControllerMetrics,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._depth = depth
        self._scaler = scaler
        self._metrics = metrics
        self._timeout = timeout
        self._clock = clock
        self.wall = wall
        self._open: dict[tuple[str, str], _Open] = {}

    def begin(
        self,
        ref: DeploymentRef,
        selector: Mapping[str, Any],
        oldest_ready_seconds: float | None,
        decided_at: float,
        scaled_at: float,
    ) -> None:
        """A scale-up from zero was written; nothing to time without a ready job."""
        if oldest_ready_seconds is None:
            return
        now = self._clock()
        self._open[(ref.namespace, ref.name)] = _Open(
            ref, dict(selector), decided_at - oldest_ready_seconds, decided_at, scaled_at,
            now, now + LOOK_EVERY / 4,
        )  # fmt: skip

    def forget(self, key: tuple[str, str]) -> None:
        self._open.pop(key, None)

    async def follow(self) -> None:
        """Once per tick: look for the first claim of each open cold start that is due."""
        now = self._clock()
        for key, start in list(self._open.items()):
            if now - start.opened > FOLLOW_SECONDS:
                del self._open[key]
                continue
            if now < start.next_look:
                continue
            start.next_look = now + LOOK_EVERY
            try:
                found = await self._first_startup(start)
            except DepthUnavailable:
                continue
            if found is not None:
                await self._finish(start, *found)

    async def _first_startup(self, start: _Open) -> tuple[str, dict[str, float]] | None:
        pattern = pod_name_pattern(start.ref.name)
        since, timeout = start.scaled_at - CLOCK_SLACK, self._timeout
        return await self._depth.read(
            lambda c: startups_sql.select_first_startup(c, pattern, since, timeout)
        )

    async def _finish(self, start: _Open, worker: str, reported: dict[str, float]) -> None:
        try:
            pods = await self._scaler.live_pods(start.ref.namespace, start.selector)
            created = earliest_creation(pods, start.scaled_at - CLOCK_SLACK)
        except Exception as exc:  # the pods' part of the timeline only
            log.debug("cold start: could not list pods: %r", exc)
            created = None
        seconds = phase_seconds(
            start.burst_at, start.decided_at, start.scaled_at, created, reported
        )
        labels = (start.ref.namespace, start.ref.name)
        if self._open.get(labels) is not start:
            return  # forgotten while we read: its series must not outlive the forget
        del self._open[labels]
        for phase, value in seconds.items():
            self._metrics.cold_start.labels(phase).observe(max(0.0, value))
            self._metrics.last_cold_start.labels(*labels, phase).set(value)
        text = ", ".join(f"{phase} {value:.2f} s" for phase, value in seconds.items())
        log.info(
            f"cold start from the burst: {text} (first claim by {worker})",
            extra={"deployment": "/".join(labels), **seconds},
        )
