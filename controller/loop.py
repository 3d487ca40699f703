"""The one control loop: every labelled Deployment, each tick, through depth -> policy -> scaler.

kopf's watch feeds `observe()`; nothing here runs per object on its own timer, so kopf never
needs a finalizer. The loop wakes on its interval, on a NOTIFY for a watched queue, or when a
Deployment's configuration or replicas change; the status annotation we write is not
configuration, so writing it never wakes the loop again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from controller import annotations as ann
from controller.capacity_guard import CapacityGuard
from controller.cold_start import ColdStarts
from controller.decisions import DecisionLog
from controller.depth import Depth, DepthSource, DepthUnavailable
from controller.first_replica import first_replica
from controller.metrics import ControllerMetrics
from controller.policy import Decision, Demand, PolicyState, Reason, decide, hold_busy
from controller.pressure_guard import PressureGuard
from controller.report import Report
from controller.scaler import DeploymentRef, ScaleConflict, Scaler, api_time
from controller.schedule_demand import with_due_schedules
from controller.tracked import Tracked, parse_config

log = logging.getLogger(__name__)

_MIN_TICK_GAP = 0.05  # a burst of NOTIFYs wakes the loop once, not once per statement
# What demand decided while every queue is paused: said as queue-paused instead.
_PAUSE_EXPLAINS = (Reason.SCALE_DOWN, Reason.SCALE_DOWN_DELAYED, Reason.STEADY,
                   Reason.BELOW_ACTIVATION)  # fmt: skip
# what a ScaledUp/ScaledDown Event adds when something other than demand set the number
_WHY = {
    Reason.QUEUE_PAUSED: " (queue-paused)",
    Reason.COLD_START: " (cold-start: one replica first, the rest once its worker claims)",
    Reason.BUSY_REPLICAS: " (busy-replicas: the pods still running jobs stay)",
}


class ControlLoop:
    def __init__(
        self,
        *,
        depth: DepthSource,
        scaler: Scaler,
        metrics: ControllerMetrics,
        interval: float,
        status_interval: float,
        is_leader: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        capacity: CapacityGuard | None = None,
        decisions: DecisionLog | None = None,
        db_timeout: float = 5.0,
    ) -> None:
        self._capacity = capacity or CapacityGuard(depth, timeout=db_timeout, window_seconds=120.0)
        self._pressure = PressureGuard(depth, timeout=db_timeout, metrics=metrics)
        self._cold_starts = ColdStarts(depth, scaler, metrics, timeout=db_timeout)
        self._report = Report(scaler, metrics, status_interval=status_interval, clock=clock)
        self._decisions = decisions
        self.deployments: dict[tuple[str, str], Tracked] = {}
        self._depth = depth
        self._scaler = scaler
        self._metrics = metrics
        self._interval = interval
        self._is_leader = is_leader
        self._clock = clock
        self._wake = asyncio.Event()
        self.last_tick: float | None = None
        # whether the last depth probe answered: while it does not, the pressure read (another
        # connection attempt that would wait out the same timeout) is skipped
        self._database_answers = True

    # ---- inputs
    def wake(self) -> None:
        self._wake.set()

    def on_new_job(self, queue: str) -> None:
        if any(t.config and queue in t.config.queues for t in self.deployments.values()):
            self.wake()

    def on_worker_started(self, name: str) -> None:
        """A worker's first claim: a first replica may have let the rest go."""
        if any(
            t.head_start and name.startswith(t.ref.name + "-") for t in self.deployments.values()
        ):
            self.wake()

    def on_leadership(self, leader: bool) -> None:
        self._metrics.leader.set(1 if leader else 0)
        for tracked in self.deployments.values():
            tracked.state = PolicyState()  # what we saw as a follower is not a streak
        self.wake()

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a labelled Deployment (type None while kopf lists)."""
        metadata = body.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        labels = metadata.get("labels") or {}
        if event_type == "DELETED" or labels.get(ann.AUTOSCALE_LABEL) != "true":
            self._forget(*key)
            return
        annotations = metadata.get("annotations") or {}
        spec = body.get("spec") or {}
        replicas = int(spec.get("replicas") or 0)
        generation = int(metadata.get("generation") or 0)
        fingerprint = ann.config_fingerprint(annotations)
        self._capacity.observe(key, body)
        tracked = self.deployments.get(key)
        if tracked is None or tracked.ref.uid != metadata.get("uid"):
            config, invalid = parse_config(annotations)
            status = ann.status_of(annotations)
            self.deployments[key] = Tracked(
                ref=DeploymentRef(key[0], key[1], metadata.get("uid", "")),
                replicas=replicas,
                generation=generation,
                selector=dict(spec.get("selector") or {}),
                fingerprint=fingerprint,
                config=config,
                invalid=invalid,
                last_scale_time=(status or {}).get("lastScaleTime"),
                status=status,
            )
            self._metrics.managed.set(len(self.deployments))
            log.info("managing deployment", extra={"deployment": "/".join(key)})
            self.wake()
            return
        changed = False
        if generation >= tracked.generation:
            changed = replicas != tracked.replicas
            tracked.replicas, tracked.generation = replicas, generation
        tracked.selector = dict(spec.get("selector") or {})
        # another replica may have scaled while we followed: keep its last scale time
        shown = (ann.status_of(annotations) or {}).get("lastScaleTime")
        if isinstance(shown, str) and shown > (tracked.last_scale_time or ""):
            tracked.last_scale_time = shown
        if fingerprint != tracked.fingerprint:
            tracked.fingerprint = fingerprint
            config, tracked.invalid = parse_config(annotations)
            # a bad edit keeps the last good config; only a good one restarts the policy
            if config is not None:
                tracked.config, tracked.state = config, PolicyState()
            tracked.invalid_warned = False
            changed = True
        if changed:
            self.wake()

    def _forget(self, namespace: str, name: str) -> None:
        self._capacity.forget((namespace, name))
        self._pressure.forget((namespace, name))
        self._cold_starts.forget((namespace, name))
        if self._decisions is not None:
            self._decisions.forget((namespace, name))
        if self.deployments.pop((namespace, name), None) is not None:
            self._metrics.forget(namespace, name)
            log.info("stopped managing deployment", extra={"deployment": f"{namespace}/{name}"})
        self._metrics.managed.set(len(self.deployments))

    # ---- the loop
    async def run(self) -> None:
        while True:
            self._wake.clear()  # a wake during the tick asks for one more tick
            started = self._clock()
            if self._is_leader():
                try:
                    await self.tick()
                except Exception:  # the loop must outlive any one bad tick
                    log.exception("control loop tick failed")
                    self._metrics.errors.labels("loop").inc()
            self.last_tick = self._clock()
            # asyncio.timeout, not wait_for: no helper task for kopf to count as hung at exit
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            await asyncio.sleep(max(0.0, started + _MIN_TICK_GAP - self._clock()))

    async def tick(self) -> None:
        self._metrics.ticks.inc()
        probes: dict[tuple[tuple[str, ...], int], Depth | DepthUnavailable] = {}
        if self.deployments and self._database_answers:
            await self._pressure.read()  # one database: one read per tick
        for tracked in list(self.deployments.values()):
            if not self._is_leader():  # lost mid-tick (e.g. slow probes): act no more
                return
            try:
                await self._reconcile(tracked, probes)
                key = (tracked.ref.namespace, tracked.ref.name)
                if self.deployments.get(key) is not tracked:
                    # deleted or unlabelled while it was reconciled: what the reconcile just
                    # set would otherwise outlive the forget that ran meanwhile
                    self._metrics.forget(*key)
            except ApiException as exc:
                if exc.status == 404:  # deleted while our watch was reconnecting
                    self._forget(tracked.ref.namespace, tracked.ref.name)
                    continue
                log.warning("kubernetes call failed: %s", exc, extra={"deployment": tracked.name})
                self._metrics.errors.labels("kubernetes").inc()
            except (TimeoutError, OSError) as exc:
                log.warning("kubernetes call failed: %s", exc, extra={"deployment": tracked.name})
                self._metrics.errors.labels("kubernetes").inc()
        if self._is_leader() and self._database_answers:
            await self._cold_starts.follow()

    async def _probe(
        self,
        config: ann.DeploymentConfig,
        probes: dict[tuple[tuple[str, ...], int], Depth | DepthUnavailable],
        rate: float | None,
    ) -> Depth | DepthUnavailable:
        key = (config.queues, config.scaling.depth_cap_at(rate))
        if key not in probes:
            started = time.perf_counter()
            try:
                probes[key] = await self._depth.depth(config.queues, key[1])
                self._metrics.probe_seconds.observe(time.perf_counter() - started)
                self._database_answers = True
            except DepthUnavailable as exc:
                self._metrics.errors.labels("database").inc()
                probes[key] = exc
                self._database_answers = False
        return probes[key]

    async def _reconcile(
        self, tracked: Tracked, probes: dict[tuple[tuple[str, ...], int], Depth | DepthUnavailable]
    ) -> None:
        if tracked.invalid is not None:
            await self._report.warn_invalid(tracked)
        if tracked.config is None:
            return
        config, key = tracked.config, tracked.key
        rate = self._capacity.rate_per_replica(key, config)
        probed = await self._probe(config, probes, rate)
        depth = probed if isinstance(probed, Depth) else None
        slots = self._capacity.slots(key, config)
        demand = Demand(depth.ready, depth.running, rate, slots) if depth else None
        decision = decide(config.scaling, tracked.replicas, demand, tracked.state, self._clock())
        tracked.state = decision.state
        decision = await self._explain_paused(tracked, decision, depth)
        if depth is not None:
            decision = with_due_schedules(config.scaling, decision, depth.due_schedules)
        decision, _ = await self._capacity.bind(tracked.ref, config, decision, self._post)
        decision = await self._pressure.hold(
            tracked.ref, config, decision, tracked.replicas, self._post
        )
        decision, tracked.head_start = first_replica(
            decision, tracked.replicas, tracked.head_start, depth.running if depth else 0,
            self._clock(),
        )  # fmt: skip
        before = tracked.replicas
        if isinstance(probed, DepthUnavailable):
            await self._report.warn_depth_unknown(tracked, probed)
        else:
            tracked.depth_warned = False
        if decision.replicas < tracked.replicas:
            decision = await self._spare_busy_pods(tracked, decision)
        if decision.replicas != tracked.replicas:
            await self._apply(tracked, decision, depth)
        binding = {
            "capacity": self._capacity.status(key),
            "databasePressure": self._pressure.status(key),
        }
        await self._report.write_status(tracked, decision, depth, binding)
        self._report.record(tracked, decision, depth)
        if self._decisions is not None and tracked.replicas == decision.replicas:
            detail: dict[str, Any] = {
                "ready": depth.ready if depth else None,
                "running": depth.running if depth else None,
                "target": decision.target,
                **{k: v for k, v in binding.items() if v is not None},
            }
            await self._decisions.record(key, before, decision.replicas, decision.reason, detail)
        if depth is not None:
            await self._capacity.measure(key, config)

    async def _explain_paused(
        self, tracked: Tracked, decision: Decision, depth: Depth | None
    ) -> Decision:
        """Every queue paused: their ready jobs were no demand, and the status and an Event say
        so (reason queue-paused); running jobs still count until they finish."""
        queues = tracked.config.queues if tracked.config else ()
        if depth is None or not queues or not set(queues) <= set(depth.paused):
            tracked.paused_noted = False
            return decision
        if decision.reason in _PAUSE_EXPLAINS:
            decision = dataclasses.replace(decision, reason=Reason.QUEUE_PAUSED)
        if not tracked.paused_noted:
            tracked.paused_noted = True
            message = (
                f"Queues {','.join(queues)} are paused (queue-paused): their ready jobs count as "
                f"no demand; {depth.running} running jobs finish, then replicas go to the minimum"
            )
            log.info(message, extra={"deployment": tracked.name})
            await self._report.event(tracked, "QueuePaused", message)
        return decision

    async def _spare_busy_pods(self, tracked: Tracked, decision: Decision) -> Decision:
        """Before a scale-down: cost each pod by its in-flight jobs, so the ReplicaSet deletes
        idle pods first, and stop the scale-down at the pods still running jobs, so it deletes
        none of them. In-flight counts that cannot be read hold the scale-down."""
        pods = await self._scaler.live_pods(tracked.ref.namespace, tracked.selector)
        try:
            in_flight = await self._depth.in_flight([pod.metadata.name for pod in pods])
        except DepthUnavailable as exc:
            log.warning("holding scale-down: %s", exc, extra={"deployment": tracked.name})
            return dataclasses.replace(
                decision, replicas=tracked.replicas, reason=Reason.DEPTH_UNKNOWN
            )
        await self._scaler.set_deletion_costs(pods, in_flight)
        busy = sum(1 for pod in pods if in_flight.get(pod.metadata.name, 0) > 0)
        return hold_busy(decision, tracked.replicas, busy)

    async def _apply(self, tracked: Tracked, decision: Decision, depth: Depth | None) -> None:
        old, new = tracked.replicas, decision.replicas
        decided_at = self._cold_starts.wall()
        try:
            replaced = await self._scaler.scale(tracked.ref, old, new)
        except ScaleConflict as exc:
            log.info("scale skipped: %s", exc, extra={"deployment": tracked.name})
            if exc.current is not None:
                tracked.replicas = exc.current
                self.wake()
            return
        tracked.replicas = new
        tracked.generation += 1  # watch events older than our write must not undo it
        if replaced is None:
            return
        tracked.last_scale_time = api_time()
        up = new > replaced
        if replaced == 0 and up:
            oldest = depth.oldest_ready_seconds if depth else None
            self._cold_starts.begin(
                tracked.ref, tracked.selector, oldest, decided_at, self._cold_starts.wall()
            )
        queues = ",".join(tracked.config.queues) if tracked.config else ""
        why = _WHY.get(decision.reason, "")
        if decision.reason is Reason.SCHEDULE_DUE and depth is not None:
            why = f" (schedule-due: {depth.due_schedules} due schedules)"
        message = (
            f"Scaled {'up' if up else 'down'} from {replaced} to {new} replicas{why}: "
            f"{depth.ready if depth else '?'} ready and {depth.running if depth else '?'} "
            f"running jobs on queues {queues}"
        )
        log.info(message, extra={"deployment": tracked.name, "from": replaced, "to": new})
        self._metrics.scale_events.labels(*tracked.key, "up" if up else "down").inc()
        await self._report.event(tracked, "ScaledUp" if up else "ScaledDown", message)

    async def _post(self, ref: DeploymentRef, reason: str, message: str, warning: bool) -> None:
        tracked = self.deployments.get((ref.namespace, ref.name))
        if tracked is not None:
            await self._report.event(tracked, reason, message, warning)
