"""controller.schedule_demand: a due schedule keeps one replica, and only where the policy
would leave none and may act."""

from __future__ import annotations

from controller.policy import Decision, PolicyState, Reason, ScalingConfig
from controller.schedule_demand import with_due_schedules

CONFIG = ScalingConfig(min_replicas=0, max_replicas=5)


def _decision(replicas: int, reason: Reason) -> Decision:
    return Decision(replicas, reason, PolicyState(), 0)


def test_a_due_schedule_on_a_pool_at_zero_asks_for_one_replica() -> None:
    for reason in (Reason.STEADY, Reason.BELOW_ACTIVATION, Reason.SCALE_DOWN):
        decided = with_due_schedules(CONFIG, _decision(0, reason), due=1)
        assert (decided.replicas, decided.reason) == (1, Reason.SCHEDULE_DUE)


def test_nothing_changes_without_a_due_schedule_or_with_replicas_left() -> None:
    steady = _decision(0, Reason.STEADY)
    assert with_due_schedules(CONFIG, steady, due=0) is steady
    up = _decision(3, Reason.SCALE_UP)
    assert with_due_schedules(CONFIG, up, due=2) is up


def test_a_paused_deployment_or_an_unknown_depth_is_left_alone() -> None:
    for reason in (Reason.PAUSED, Reason.DEPTH_UNKNOWN):
        held = _decision(0, reason)
        assert with_due_schedules(CONFIG, held, due=1) is held
