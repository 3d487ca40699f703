"""L2: the capacity caps and the completion window, pure and driven by hypothesis like the
rest of the policy (whose wait-time target is in test_policy)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller import annotations as a
from controller.capacity import (
    Cap,
    ConnectionUse,
    QueueLimits,
    bind,
    connection_cap,
    limit_cap,
    queue_slots,
)
from controller.capacity_guard import slots_per_replica, template_concurrency
from controller.completion_rate import CompletionWindow, Finished
from controller.decisions import Recorded, worth_recording
from controller.policy import Decision, PolicyState, Reason

limits = st.builds(
    QueueLimits,
    concurrency_limit=st.none() | st.integers(1, 1000),
    rate_limit_jobs=st.none() | st.integers(1, 10_000),
    rate_limit_per_seconds=st.none() | st.floats(0.1, 3600),
)
durations = st.none() | st.floats(0.001, 600)
uses = st.builds(
    ConnectionUse,
    max_connections=st.integers(1, 5000),
    superuser_reserved=st.integers(0, 20),
    reserved=st.integers(0, 20),
    not_ours=st.integers(0, 5000),
)
reasons = st.sampled_from(list(Reason))
decisions = st.builds(
    Decision, replicas=st.integers(0, 100), reason=reasons, state=st.just(PolicyState()),
    target=st.none() | st.integers(0, 100),
)  # fmt: skip
caps = st.builds(
    Cap,
    reason=st.sampled_from([Reason.LIMIT_CAPPED, Reason.DB_CONNECTION_BUDGET]),
    replicas=st.integers(0, 100),
)


# ---------------------------------------------------------------- the limit cap
@given(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True),
       st.dictionaries(st.sampled_from("abcd"), limits), st.integers(1, 64), durations)  # fmt: skip
def test_limit_cap_is_the_fewest_replicas_that_hold_every_usable_slot(
    queues, found, slots, duration
) -> None:
    cap = limit_cap(queues, found, slots, duration)
    per_queue = [queue_slots(found.get(q, QueueLimits()), duration) for q in queues]
    if any(s is None for s in per_queue):
        assert cap is None  # an unlimited queue can use any number of replicas
        return
    assert cap is not None and cap.reason is Reason.LIMIT_CAPPED
    total = sum(s for s in per_queue if s is not None)
    assert cap.replicas * slots >= total > (cap.replicas - 1) * slots
    assert cap.detail["cap"] == cap.replicas and cap.summary


@given(limits, st.floats(0.001, 600), st.floats(0.001, 600))
def test_a_rate_limit_allows_more_slots_for_longer_jobs(found, short, long) -> None:
    short, long = min(short, long), max(short, long)
    at_short, at_long = queue_slots(found, short), queue_slots(found, long)
    if at_short is not None and at_long is not None:
        assert at_short <= at_long
    if found.concurrency_limit is not None:
        assert at_long is not None and at_long <= found.concurrency_limit


def test_a_rate_limit_caps_by_littles_law() -> None:
    # 100 starts per 60 s of 6 s jobs keep 10 running: 4 replicas of 3 slots
    cap = limit_cap(["q"], {"q": QueueLimits(None, 100, 60)}, 3, 6.0)
    assert cap is not None and cap.replicas == 4 and cap.detail["slots"] == 10
    # no measured run time yet: the rate alone says nothing about concurrency
    assert limit_cap(["q"], {"q": QueueLimits(None, 100, 60)}, 3, None) is None
    # 5 slots / 3 per replica
    assert limit_cap(["q"], {"q": QueueLimits(5)}, 3, None).replicas == 2  # type: ignore[union-attr]


# ---------------------------------------------------------------- the connection budget
@given(uses, st.integers(0, 200), st.integers(1, 20))
def test_the_budget_is_the_most_replicas_whose_connections_fit(use, reserved, per_replica) -> None:
    cap = connection_cap(use, reserved, per_replica)
    free = use.max_connections - use.superuser_reserved - use.reserved - reserved - use.not_ours
    assert cap.replicas >= 0 and cap.reason is Reason.DB_CONNECTION_BUDGET
    assert cap.replicas * per_replica <= max(free, 0) < (cap.replicas + 1) * per_replica


def test_the_budget_says_its_numbers() -> None:
    cap = connection_cap(ConnectionUse(100, 3, 0, 12), 10, 3)
    assert cap.replicas == 25
    assert "max_connections 100" in cap.summary and "in use by others 12" in cap.summary


# ---------------------------------------------------------------- binding
@given(decisions, st.lists(st.none() | caps, max_size=3))
def test_the_decision_is_the_smallest_of_policy_and_caps(decision, found) -> None:
    bound, binding = bind(decision, found)
    if decision.reason in (Reason.PAUSED, Reason.DEPTH_UNKNOWN):
        assert bound == decision and binding is None  # holding stays holding
        return
    smallest = min([decision.replicas] + [c.replicas for c in found if c is not None])
    assert bound.replicas == smallest
    if smallest < decision.replicas:
        assert binding is not None and bound.reason is binding.reason
        assert binding.replicas == smallest
    else:
        assert binding is None and bound == decision


# ---------------------------------------------------------------- the completion window
samples = st.lists(
    st.tuples(st.floats(0, 30), st.integers(0, 500), st.floats(0, 1000)), max_size=30
)


@given(samples, st.floats(1, 300), st.integers(1, 64))
def test_the_window_keeps_the_span_and_rates_by_mean_run_time(steps, span, slots) -> None:
    window, now, fed = CompletionWindow(span), 0.0, []
    for gap, jobs, run_seconds in steps:
        now += gap
        window = window.add(Finished(now, jobs, run_seconds))
        fed.append(Finished(now, jobs, run_seconds))
    kept = [s for s in fed if s.at > now - span and s.jobs]
    assert window.samples == tuple(kept)
    jobs = sum(s.jobs for s in kept)
    rate = window.rate_per_replica(slots)
    if jobs == 0:
        assert rate is None and window.mean_run_seconds() is None
    else:
        mean = max(0.001, sum(s.run_seconds for s in kept) / jobs)
        assert rate == pytest.approx(slots / mean)


def test_the_window_forgets_old_jobs() -> None:
    window = CompletionWindow(60).add(Finished(0, 10, 20.0)).add(Finished(30, 10, 0.5))
    assert window.mean_run_seconds() == pytest.approx(1.025)
    window = window.add(Finished(70, 0, 0))
    assert window.mean_run_seconds() == pytest.approx(0.05)
    assert window.add(Finished(200, 0, 0)).rate_per_replica(3) is None


# ---------------------------------------------------------------- annotations and template
def test_capacity_annotations_are_read_and_default_per_the_design() -> None:
    default = a.parse({})
    assert default.scaling.target_wait_seconds is None
    assert default.capacity == a.CapacityConfig(None, 3, 10)
    config = a.parse(
        {
            a.TARGET_WAIT_SECONDS: "30s",
            a.CONCURRENCY: "8",
            a.DB_CONNECTIONS_PER_REPLICA: "4",
            a.DB_RESERVED_CONNECTIONS: "0",
        }
    )
    assert config.scaling.target_wait_seconds == 30
    assert config.capacity == a.CapacityConfig(8, 4, 0)


def _template(*env: dict[str, str]) -> dict[str, object]:
    containers = [{"name": "worker", "env": list(env)}]
    return {"spec": {"template": {"spec": {"containers": containers}}}}


def test_slots_per_replica_come_from_the_template_then_the_annotation_then_three() -> None:
    assert template_concurrency(_template({"name": "MAX_CONCURRENT_JOBS", "value": "7"})) == 7
    assert template_concurrency(_template({"name": "MAX_CONCURRENT_JOBS", "value": "x"})) is None
    # a digit to str.isdigit() that int() refuses: not a number, and no crash
    assert template_concurrency(_template({"name": "MAX_CONCURRENT_JOBS", "value": "²"})) is None
    assert template_concurrency(_template({"name": "OTHER", "value": "7"})) is None
    assert template_concurrency({}) is None
    annotated = a.parse({a.CONCURRENCY: "5"})
    assert slots_per_replica(annotated, 7) == 7
    assert slots_per_replica(annotated, None) == 5
    assert slots_per_replica(a.parse({}), None) == 3


# ---------------------------------------------------------------- the decisions record
def test_a_decision_is_recorded_when_replicas_or_the_binding_change() -> None:
    assert worth_recording(None, 0, 2, "scale-up")
    assert not worth_recording(Recorded(2, None), 2, 2, "steady")
    assert worth_recording(Recorded(2, None), 2, 2, "limit-capped")
    assert not worth_recording(Recorded(2, "limit-capped"), 2, 2, "limit-capped")
    assert worth_recording(Recorded(2, "limit-capped"), 2, 2, "db-connection-budget")
    assert worth_recording(Recorded(2, "limit-capped"), 2, 2, "steady")
