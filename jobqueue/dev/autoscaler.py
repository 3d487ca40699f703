"""The local autoscaler: the controller's depth probe and scaling policy, applied to worker
processes on this machine instead of a Deployment's replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controller.decisions import DecisionLog
from controller.depth import Depth, DepthSource, DepthUnavailable
from controller.policy import Decision, Demand, PolicyState, Reason, ScalingConfig, decide
from controller.schedule_demand import with_due_schedules
from jobqueue.dev.children import Child, python_command, spawn, stop_all

log = logging.getLogger("jobqueue.dev")

KILL_AFTER_DRAIN_SECONDS = 5.0  # a worker still alive this long past its drain timeout
QUICK_EXIT_SECONDS = 10.0  # a worker that exits sooner than this on its own is crash-looping
MAX_RESTART_BACKOFF = 30.0
# the console's Scaling page shows the local stack's decisions under this name
DECISIONS_KEY = ("local", "jobqueue-dev-workers")
DECISIONS_KEEP_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class ScaleRecord:
    at: datetime
    old: int
    new: int
    reason: Reason
    ready: int | None
    running: int | None

    def describe(self) -> str:
        demand = (
            "depth unknown" if self.ready is None else f"{self.ready} ready, {self.running} running"
        )
        return f"{self.old} → {self.new} workers ({self.reason.value}: {demand})"


class WorkerFleet:
    """Local `jobqueue worker` processes: those serving, and those draining after SIGTERM."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        drain_timeout: float,
        on_event: Callable[[str], None],
    ) -> None:
        self._env = dict(env)
        self._log_dir = log_dir
        self._drain_timeout = drain_timeout
        self._on_event = on_event
        self._started = 0
        self._quick_exits = 0
        self.hold_starts_until = 0.0  # after quick exits: no new workers before this time
        self.serving: list[Child] = []
        self.draining: list[Child] = []

    @property
    def all(self) -> list[Child]:
        return [*self.serving, *self.draining]

    def start(self, count: int) -> None:
        for _ in range(count):
            self._started += 1
            name = f"dev-worker-{self._started}"
            env = {**self._env, "JOBQUEUE_WORKER_NAME": name}
            child = spawn(name, python_command("worker"), env, self._log_dir / f"{name}.log")
            self.serving.append(child)
            self._on_event(f"started {name} (pid {child.pid})")

    def may_start(self) -> bool:
        return time.monotonic() >= self.hold_starts_until

    def stop_all(self) -> None:
        """Drain every worker, waiting out the drain timeout before killing."""
        self.drain(list(self.serving))
        stop_all(self.draining, self._drain_timeout + KILL_AFTER_DRAIN_SECONDS)
        self.reap()

    def drain(self, children: Sequence[Child]) -> None:
        for child in children:
            self.serving.remove(child)
            self.draining.append(child)
            child.terminate()
            self._on_event(f"draining {child.name} (pid {child.pid})")

    def reap(self) -> None:
        """Forget exited workers; kill those draining far past their drain timeout."""
        now = time.monotonic()
        for child in self.all:
            code = child.exit_code
            if code is None:
                since = child.stopping_since
                if (
                    since is not None
                    and now - since > self._drain_timeout + KILL_AFTER_DRAIN_SECONDS
                ):
                    child.kill()
                continue
            if child in self.draining:
                self.draining.remove(child)
                self._on_event(f"{child.name} stopped (exit code {code})")
                continue
            self.serving.remove(child)
            self._on_event(f"{child.name} exited on its own (code {code}); see {child.log_path}")
            if now - child.started_at < QUICK_EXIT_SECONDS:
                self._quick_exits += 1
                backoff = min(MAX_RESTART_BACKOFF, 2.0**self._quick_exits)
                self.hold_starts_until = now + backoff
                self._on_event(f"starting no workers for {backoff:.0f}s")
            else:
                self._quick_exits = 0


class LocalAutoscaler:
    """Decides each interval, and at once when a NOTIFY says a watched queue got a job."""

    def __init__(
        self,
        dsn: str,
        fleet: WorkerFleet,
        config: ScalingConfig,
        queues: Sequence[str],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._depth = DepthSource(dsn, on_new_job=self.wake)
        self._decisions = DecisionLog(
            self._depth, keep_seconds=DECISIONS_KEEP_SECONDS, timeout=5.0, clock=clock
        )
        self._fleet = fleet
        self._config = config
        self._queues = list(queues)
        self._interval = interval
        self._clock = clock
        self._state = PolicyState()
        self._wake = asyncio.Event()
        self.last_depth: Depth | None = None
        self.last_decision: Decision | None = None
        self.history: deque[ScaleRecord] = deque(maxlen=50)
        self.on_scale: Callable[[ScaleRecord], None] = lambda record: None

    def wake(self, queue: str = "") -> None:
        """NOTIFY for a new job: decide now rather than at the next interval."""
        if not queue or queue in self._queues:
            self._wake.set()

    async def close(self) -> None:
        await self._depth.close()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("local autoscaler tick failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            except TimeoutError:
                pass

    async def tick(self) -> None:
        self._fleet.reap()
        try:
            depth: Depth | None = await self._depth.depth(self._queues, self._config.depth_cap)
        except DepthUnavailable as exc:
            log.warning("%s; holding %d workers", exc, len(self._fleet.serving))
            depth = None
        self.last_depth = depth
        demand = Demand(depth.ready, depth.running) if depth else None
        current = len(self._fleet.serving)
        decision = decide(self._config, current, demand, self._state, self._clock())
        self._state = decision.state
        if depth is not None:  # a cron job on a pool at zero: one worker runs its scheduler
            decision = with_due_schedules(self._config, decision, depth.due_schedules)
        self.last_decision = decision
        if decision.replicas > current:
            if not self._fleet.may_start():
                return
            self._fleet.start(decision.replicas - current)
        elif decision.replicas < current:
            if not await self._drain_idle_first(current - decision.replicas):
                return
        else:
            return
        record = ScaleRecord(
            datetime.now().astimezone(),
            current,
            decision.replicas,
            decision.reason,
            depth.ready if depth else None,
            depth.running if depth else None,
        )
        self.history.append(record)
        self.on_scale(record)
        detail = {"ready": record.ready, "running": record.running, "target": decision.target}
        if depth is not None and depth.due_schedules:
            detail["due_schedules"] = depth.due_schedules
        await self._decisions.record(
            DECISIONS_KEY, current, decision.replicas, decision.reason.value, detail
        )

    async def _drain_idle_first(self, count: int) -> bool:
        """As the controller's pod-deletion cost does: the workers with the fewest jobs in
        flight go first, the newest among equals. False when in-flight counts are unknown."""
        serving = self._fleet.serving
        try:
            in_flight = await self._depth.in_flight([child.name for child in serving])
        except DepthUnavailable as exc:
            log.warning("holding scale-down: %s", exc)
            return False
        ranked = sorted(serving, key=lambda c: (in_flight.get(c.name, 0), -c.started_at))
        self._fleet.drain(ranked[:count])
        return True
