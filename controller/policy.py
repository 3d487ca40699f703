"""The scaling policy: a pure function of configuration, demand, current replicas, state and time.

No I/O and no clock of its own, so the Kubernetes controller and a local dev autoscaler of
worker processes can share it, and property tests can drive it through any timeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum


@dataclass(frozen=True)
class ScalingConfig:
    min_replicas: int = 0
    max_replicas: int = 10
    jobs_per_replica: int = 10
    activation_jobs: int = 0
    scale_down_delay: float = 60.0
    paused: bool = False
    target_wait_seconds: float | None = None  # also drain the ready backlog within this time
    idle_replicas: int = 0  # ready replicas kept above demand (warm capacity)

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError("need 0 <= min_replicas <= max_replicas")
        if self.max_replicas < 1:
            raise ValueError("max_replicas must be at least 1")
        if self.jobs_per_replica < 1:
            raise ValueError("jobs_per_replica must be at least 1")
        if self.activation_jobs < 0 or self.scale_down_delay < 0 or self.idle_replicas < 0:
            raise ValueError(
                "activation_jobs, scale_down_delay and idle_replicas must not be negative"
            )
        if self.target_wait_seconds is not None and not self.target_wait_seconds > 0:
            raise ValueError("target_wait_seconds must be positive")

    @property
    def depth_cap(self) -> int:
        """Counting past this changes no decision, so the depth probe stops here (the
        activation threshold counts too: a threshold above max x ratio needs counting past it)."""
        return max(self.max_replicas * self.jobs_per_replica, self.activation_jobs) + 1

    def depth_cap_at(self, rate_per_replica: float | None) -> int:
        """The depth cap once a wait target is set: the backlog that max_replicas drain within
        the target at the measured rate must be countable, or the target would undercount."""
        if self.target_wait_seconds is None or not rate_per_replica:
            return self.depth_cap
        drained = self.max_replicas * rate_per_replica * self.target_wait_seconds
        return max(self.depth_cap, math.ceil(min(drained, 10_000_000)) + 1)


@dataclass(frozen=True)
class Demand:
    ready: int
    running: int
    # jobs one replica completes per second, measured; None until jobs have finished
    rate_per_replica: float | None = None
    slots_per_replica: int | None = None  # job slots of one replica, when known


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between calls: the stabilisation window, the targets seen over
    the last scale-down-delay seconds. Each pair is (until, target): the last moment that target
    was in effect. Targets fall and times rise along the window, so its first pair is the
    highest target in it (a sliding-window maximum: at most one pair per distinct target)."""

    window: tuple[tuple[float, int], ...] = ()


class Reason(StrEnum):
    SCALE_UP = "scale-up"
    SCALE_DOWN = "scale-down"
    SCALE_DOWN_DELAYED = "scale-down-delayed"
    STEADY = "steady"
    BELOW_ACTIVATION = "below-activation"
    PAUSED = "paused"
    DEPTH_UNKNOWN = "depth-unknown"
    QUEUE_PAUSED = "queue-paused"  # every queue is paused: set by the loop, not by decide()
    # a scale-down that stopped at the replicas still running jobs (set by the loop, which
    # reads the pods' in-flight jobs, through hold_busy)
    BUSY_REPLICAS = "busy-replicas"
    # set by controller.pressure: scale-up held while the database cannot take more workers
    DATABASE_PRESSURE = "database-pressure"
    # set by controller.first_replica: from zero, one replica first, the rest once it claims
    COLD_START = "cold-start"
    # set by controller.capacity when a cap is below what the policy asks for
    LIMIT_CAPPED = "limit-capped"
    DB_CONNECTION_BUDGET = "db-connection-budget"
    # a due schedule on a pool at zero: set by controller.schedule_demand, not by decide()
    SCHEDULE_DUE = "schedule-due"


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: Reason
    state: PolicyState
    target: int | None  # what demand alone asks for; None when it is unknown or ignored


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def target_replicas(config: ScalingConfig, demand: Demand, current: int) -> int:
    """Replicas that demand alone asks for, plus the idle ones, bounds and the activation
    threshold applied."""
    if current == 0 and demand.ready <= config.activation_jobs:
        return clamp(config.idle_replicas, config.min_replicas, config.max_replicas)
    wanted = math.ceil((demand.ready + demand.running) / config.jobs_per_replica)
    wanted = max(wanted, wait_target_replicas(config.target_wait_seconds, demand))
    return clamp(wanted + config.idle_replicas, config.min_replicas, config.max_replicas)


def wait_target_replicas(target_wait_seconds: float | None, demand: Demand) -> int:
    """Replicas that drain the ready backlog within the target wait at the measured rate, and
    no fewer than the running jobs occupy; 0 when there is no target (the jobs-per-replica
    ratio alone decides), and only the occupied ones until a rate is measured."""
    if target_wait_seconds is None:
        return 0
    # the replicas that the running jobs occupy: as the backlog shrinks, the target shrinks
    # with it, and without this floor a scale-down would take pods still running jobs
    busy = math.ceil(demand.running / demand.slots_per_replica) if demand.slots_per_replica else 0
    rate = demand.rate_per_replica
    if rate is None or rate <= 0 or demand.ready <= 0:
        return busy
    # the replicas busy with running jobs keep working too: the backlog drains on all of them
    return max(busy, math.ceil(demand.ready / (rate * target_wait_seconds)))


def decide(
    config: ScalingConfig,
    current: int,
    demand: Demand | None,
    state: PolicyState,
    now: float,
) -> Decision:
    """The replicas to have now. Up at once; down to the highest target of the last
    scale-down-delay seconds (HPA's scale-down stabilisation window), a target counting until
    the next look replaces it: a burst reaches its floor one delay after its last busy moment,
    in one step when its demand fell away at once, and never a delay per step."""
    if config.paused:
        return Decision(current, Reason.PAUSED, PolicyState(), None)
    if demand is None:
        # Unknown demand never counts as lower demand: the window restarts from the current
        # size, so a scale-down waits a whole delay once demand is known again.
        return Decision(current, Reason.DEPTH_UNKNOWN, PolicyState(((now, current),)), None)

    target = target_replicas(config, demand, current)
    # a fresh window (first look, or after a reset) starts at the current size: what came
    # before is unknown, so it cannot count as lower demand
    window = _slide(state.window or ((now, current),), now, config.scale_down_delay)
    stabilised = max(target, window[0][1]) if window else target
    kept = PolicyState(_push(window, now, target))
    if target > current:
        return Decision(target, Reason.SCALE_UP, kept, target)
    if stabilised < current:
        return Decision(stabilised, Reason.SCALE_DOWN, kept, target)
    if target < current:
        return Decision(current, Reason.SCALE_DOWN_DELAYED, kept, target)
    reason = Reason.BELOW_ACTIVATION if current == 0 and demand.ready else Reason.STEADY
    return Decision(current, reason, kept, target)


def _slide(
    window: tuple[tuple[float, int], ...], now: float, delay: float
) -> tuple[tuple[float, int], ...]:
    """The latest target lasted until now; pairs that ended `delay` or more ago leave."""
    until, target = window[-1]
    window = (*window[:-1], (max(until, now), target))
    return tuple(pair for pair in window if pair[0] > now - delay)


def _push(
    window: tuple[tuple[float, int], ...], now: float, target: int
) -> tuple[tuple[float, int], ...]:
    """Add this target; the pairs it equals or exceeds can never be the maximum again."""
    kept = list(window)
    while kept and kept[-1][1] <= target:
        kept.pop()
    return (*kept, (now, target))


def hold_busy(decision: Decision, current: int, busy: int) -> Decision:
    """A scale-down stops at the replicas still running jobs (`busy`, from the pods' in-flight
    counts): the ReplicaSet removes the idle pods first (pod-deletion-cost), so none of the
    busy ones is deleted. Anything that is not a scale-down passes unchanged."""
    if decision.replicas >= current or decision.replicas >= busy:
        return decision
    return replace(decision, replicas=min(current, busy), reason=Reason.BUSY_REPLICAS)
