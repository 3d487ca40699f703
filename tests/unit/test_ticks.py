"""L2: schedule timing (worker.ticks) as pure functions: cron in a time zone across DST,
fixed intervals, and what a scheduler pass fires after a delay or a long outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.ticks import InvalidSchedule, Timing, plan

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"cron": "bogus"}, "cron"),
        ({"every_seconds": 0}, "every_seconds"),
        ({"every_seconds": -5}, "every_seconds"),
        ({"every_seconds": float("inf")}, "every_seconds"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": "* * * * *", "every_seconds": 5}, "cron"),
        ({}, "cron"),
    ],
)
def test_bad_timings_name_their_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Timing(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_cron_next_is_strictly_after() -> None:
    every_minute = Timing(cron="* * * * *")
    assert every_minute.next_after(T0) == T0 + timedelta(minutes=1)
    assert every_minute.next_after(T0 + timedelta(seconds=30)) == T0 + timedelta(minutes=1)
    assert every_minute.latest_at_or_before(T0) == T0
    assert every_minute.latest_at_or_before(T0 + timedelta(seconds=59)) == T0


def test_cron_keeps_local_time_across_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    six = Timing(cron="0 6 * * *", timezone="Europe/Paris")
    tick = datetime(2024, 3, 29, 12, tzinfo=UTC)
    seen = []
    for _ in range(4):  # across the spring change (31 March 2024)
        tick = six.next_after(tick)
        seen.append(tick)
    assert [t.astimezone(paris).hour for t in seen] == [6, 6, 6, 6]
    # 06:00 Paris is 05:00 UTC before the change and 04:00 UTC after it
    assert [t.hour for t in seen] == [5, 4, 4, 4]
    # the skipped hour: 02:30 does not exist on 31 March, cron runs it at 03:00
    skipped = Timing(cron="30 2 * * *", timezone="Europe/Paris")
    first = skipped.next_after(datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert first.astimezone(paris).replace(tzinfo=None) == datetime(2024, 3, 31, 3, 0)
    # the repeated hour in autumn runs once
    repeated = Timing(cron="30 2 * * *", timezone="Europe/Paris")
    start = datetime(2024, 10, 26, 12, tzinfo=UTC)
    ticks = [repeated.next_after(start)]
    ticks.append(repeated.next_after(ticks[0]))
    assert ticks[1] - ticks[0] > timedelta(hours=23)


@given(
    every=st.floats(min_value=0.01, max_value=10_000),
    offset=st.floats(min_value=0, max_value=10**9),
)
def test_interval_ticks_are_on_a_grid_and_strictly_later(every: float, offset: float) -> None:
    timing = Timing(every_seconds=every)
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    following = timing.next_after(instant)
    assert following > instant
    assert following - instant <= timedelta(seconds=every) + timedelta(microseconds=2)
    latest = timing.latest_at_or_before(instant)
    assert latest <= instant < latest + timedelta(seconds=every) + timedelta(microseconds=2)


def test_a_late_pass_fires_every_tick_in_order() -> None:
    timing = Timing(every_seconds=1)
    firing = plan(
        timing, T0, T0 + timedelta(seconds=4.5), catch_up="one", grace_seconds=30, max_ticks=100
    )
    assert firing.ticks == [T0 + timedelta(seconds=s) for s in range(5)]
    assert not firing.missed
    assert firing.next_run_at == T0 + timedelta(seconds=5)


def test_nothing_due_changes_nothing() -> None:
    timing = Timing(every_seconds=10)
    firing = plan(timing, T0, T0 - timedelta(seconds=1), catch_up="one", grace_seconds=30,
                  max_ticks=100)  # fmt: skip
    assert firing.ticks == [] and firing.next_run_at == T0 and not firing.missed


@pytest.mark.parametrize("cron", [None, "* * * * *"])
def test_after_an_outage_one_catch_up_job_or_none(cron: str | None) -> None:
    timing = Timing(cron=cron) if cron else Timing(every_seconds=60)
    now = T0 + timedelta(days=3, seconds=20)
    one = plan(timing, T0, now, catch_up="one", grace_seconds=30, max_ticks=100)
    assert one.missed
    assert one.ticks == [T0 + timedelta(days=3)]  # the latest missed tick, once
    assert one.next_run_at == T0 + timedelta(days=3, minutes=1)
    skip = plan(timing, T0, now, catch_up="skip", grace_seconds=30, max_ticks=100)
    assert skip.missed and skip.ticks == [] and skip.next_run_at == one.next_run_at


def test_more_due_ticks_than_the_cap_count_as_missed() -> None:
    timing = Timing(every_seconds=0.01)
    firing = plan(timing, T0, T0 + timedelta(seconds=5), catch_up="one", grace_seconds=30,
                  max_ticks=100)  # fmt: skip
    assert firing.missed and len(firing.ticks) == 1
