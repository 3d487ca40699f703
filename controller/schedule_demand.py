"""A due schedule is demand (DESIGN.md's `schedule-due`). The scheduler runs inside workers,
so on a pool at zero a cron job would never fire: while a schedule of the pool's queues is
due, the pool keeps at least one replica, and that worker enqueues the tick's job, which is
then ordinary demand. Pure: the controller's loop and `jobqueue dev` apply it to the policy's
decision."""

from __future__ import annotations

from controller.policy import Decision, PolicyState, Reason, ScalingConfig

# the policy knows nothing of the demand, or was told to leave the replicas alone
_HANDS_OFF = frozenset({Reason.PAUSED, Reason.DEPTH_UNKNOWN})


def with_due_schedules(config: ScalingConfig, decision: Decision, due: int) -> Decision:
    """The decision, or one replica (reason schedule-due) when it leaves none while `due`
    schedules wait."""
    if due <= 0 or decision.replicas >= 1:
        return decision
    if decision.reason in _HANDS_OFF:
        return decision
    return Decision(1, Reason.SCHEDULE_DUE, PolicyState(), decision.target)
