"""L2: the database-pressure hold and the cold-start timeline, pure and driven by hypothesis like
the rest of the policy."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from controller.cold_start import PHASES, earliest_creation, phase_seconds
from controller.policy import Decision, PolicyState, Reason
from controller.pressure import Blocker, DatabasePressure, hold_scale_up, pressure_hold
from tests.unit.test_policy import decisions

blockers = st.builds(
    Blocker,
    pid=st.none() | st.integers(1, 99_999),
    application=st.text(max_size=20),
    state=st.sampled_from(["idle in transaction", "active", "prepared"]),
    age_seconds=st.floats(0, 10_000),
)
pressures = st.builds(
    DatabasePressure,
    oldest=st.none() | blockers,
    max_connections=st.integers(1, 1000),
    reserved_connections=st.integers(0, 20),
    client_connections=st.integers(0, 1000),
    sees_all=st.booleans(),
)
thresholds = st.floats(0, 3600)


@given(pressures, thresholds, st.integers(1, 10))
def test_a_hold_is_called_for_exactly_past_the_threshold_or_without_headroom(
    pressure, threshold, per_replica
) -> None:
    hold = pressure_hold(pressure, threshold, per_replica)
    pinned = pressure.oldest is not None and pressure.oldest.age_seconds >= threshold
    no_room = pressure.headroom < per_replica
    assert (hold is not None) == (pinned or no_room)
    if hold is not None:
        assert hold.no_headroom == no_room
        assert (hold.pinned is not None) == pinned
        assert hold.summary == hold.detail["summary"]


@given(decisions, st.integers(0, 60), pressures, thresholds, st.integers(1, 10))
def test_a_hold_never_scales_up_past_the_current_replicas_and_never_scales_down(
    decision, current, pressure, threshold, per_replica
) -> None:
    hold = pressure_hold(pressure, threshold, per_replica)
    held = hold_scale_up(decision, current, hold)
    if hold is None or decision.replicas <= current:
        assert held == decision  # scale-downs and steady decisions pass untouched
        return
    assert current <= held.replicas <= decision.replicas
    if held != decision:
        assert held.reason is Reason.DATABASE_PRESSURE
    # from zero, one replica may start under a pinned horizon, never without headroom
    if current == 0 and hold.no_headroom:
        assert held.replicas == 0
    elif current == 0:
        assert held.replicas == 1
    else:
        assert held.replicas == current


def test_the_hold_names_the_session_to_blame() -> None:
    pinned = Blocker(4242, "nightly-report", "idle in transaction", 75.4)
    pressure = DatabasePressure(pinned, 100, 3, 20)
    hold = pressure_hold(pressure, 60, 3)
    assert hold is not None and hold.pinned == pinned
    assert "pid 4242" in hold.summary and "'nightly-report'" in hold.summary
    assert "'idle in transaction'" in hold.summary and "75 s" in hold.summary
    assert hold.detail["pid"] == 4242 and hold.detail["ageSeconds"] == 75
    held = hold_scale_up(Decision(8, Reason.SCALE_UP, PolicyState(), 8), 2, hold)
    assert (held.replicas, held.reason) == (2, Reason.DATABASE_PRESSURE)
    assert pressure_hold(pressure, 90, 3) is None  # younger than the threshold: no hold


def test_no_headroom_is_a_hold_too() -> None:
    full = DatabasePressure(None, 100, 3, 96)  # one connection left; a replica needs 3
    hold = pressure_hold(full, 60, 3)
    assert hold is not None and hold.no_headroom and hold.detail["headroom"] == 1
    assert hold_scale_up(Decision(5, Reason.SCALE_UP, PolicyState(), 5), 0, hold).replicas == 0


# ---------------------------------------------------------------- the cold-start timeline
@given(
    st.floats(1e9, 2e9),
    st.lists(st.floats(0, 30), min_size=9, max_size=9).map(sorted),
)
def test_cold_start_phases_are_seconds_after_the_burst_in_order(burst, offsets) -> None:
    at = [burst + offset for offset in offsets]
    reported = {
        "processStarted": at[3],
        "imported": at[4],
        "connected": at[5],
        "registered": at[6],
        "firstClaim": at[7],
    }
    seconds = phase_seconds(burst, at[0], at[1], at[2], reported)
    assert list(seconds) == list(PHASES)
    assert all(
        abs(value - offset) < 1e-6
        for value, offset in zip(seconds.values(), offsets[:8], strict=True)
    )


def test_a_missing_pod_time_leaves_its_phase_out() -> None:
    seconds = phase_seconds(100.0, 100.1, 100.2, None, {"processStarted": 100.5})
    assert list(seconds) == ["decision", "scaled", "containerStarted"]


def test_the_earliest_new_pod_counts() -> None:
    def pod(second: int) -> SimpleNamespace:
        created = datetime.fromtimestamp(second, UTC)
        return SimpleNamespace(metadata=SimpleNamespace(creation_timestamp=created))

    pods = [pod(1_000_005), pod(1_000_003), pod(999_990)]  # the last one predates the scale-up
    assert earliest_creation(pods, 1_000_002.5) == 1_000_003
    assert earliest_creation([], 0) is None
