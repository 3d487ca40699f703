"""L2: from zero, one replica first (controller.first_replica), driven by hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controller.first_replica import HEAD_START_SECONDS, HeadStart, first_replica
from controller.policy import Reason
from tests.unit.test_policy import decisions
from worker.db import sql_files
from worker.db.startups import WORKER_STARTED_CHANNEL


@given(decisions, st.integers(0, 60), st.floats(0, 1e6))
def test_from_zero_at_most_one_replica_starts(decision, running, now) -> None:
    cut, head_start = first_replica(decision, 0, None, running, now)
    assert cut.replicas == min(decision.replicas, 1)
    assert (head_start is not None) == (decision.replicas > 1)
    if head_start is not None:
        assert cut.reason is Reason.COLD_START and head_start.since == now


@given(decisions, st.integers(1, 60), st.integers(0, 60), st.floats(0, 10), st.floats(0, 1e6))
def test_the_rest_follow_once_a_job_runs_or_the_head_start_is_over(
    decision, current, running, waited, since
) -> None:
    now = since + waited
    held, kept = first_replica(decision, current, HeadStart(since), running, now)
    if decision.replicas <= current:
        assert (held, kept) == (decision, None)  # never holds a scale-down, and ends
    elif running > 0 or waited >= HEAD_START_SECONDS:
        assert (held, kept) == (decision, None)
    else:
        assert (held.replicas, held.reason, kept) == (current, Reason.COLD_START, HeadStart(since))


@given(decisions, st.integers(1, 60), st.integers(0, 60))
def test_without_a_head_start_nothing_is_held(decision, current, running) -> None:
    assert first_replica(decision, current, None, running, 0.0) == (decision, None)


def test_the_worker_notifies_the_channel_the_controller_listens_on() -> None:
    statement = sql_files.query("startups", "update_worker_startup")
    assert f"pg_notify('{WORKER_STARTED_CHANNEL}', name)" in statement
