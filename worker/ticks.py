"""When a schedule fires: pure functions over a cron expression (parsed by cronsim) or a fixed
interval, shared by the API (validation, the first next_run_at) and the scheduler service.

Cron expressions are evaluated in the schedule's IANA time zone, so "0 6 * * *" in
Europe/Paris stays at 06:00 local time across DST changes; cronsim follows cron's own rules
for the skipped and repeated hours. Every instant returned is timezone-aware UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

# Interval ticks are anchored here, so that every process computes the same instants.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidSchedule(ValueError):
    """A schedule's timing is wrong; `field` names the one to fix."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Timing:
    cron: str | None = None
    every_seconds: float | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every_seconds is None):
            raise InvalidSchedule("cron", "give either cron or every_seconds, not both or neither")
        if self.every_seconds is not None and not (
            math.isfinite(self.every_seconds) and self.every_seconds > 0
        ):
            raise InvalidSchedule("every_seconds", "must be a finite number > 0")
        zone = _zone(self.timezone)
        if self.cron is not None:
            if len(self.cron.split()) != 5:
                raise InvalidSchedule(
                    "cron", f"{self.cron!r} is not a five-field cron expression (m h dom mon dow)"
                )
            try:
                next(CronSim(self.cron, datetime.now(zone)))
            except (CronSimError, StopIteration) as exc:
                raise InvalidSchedule("cron", f"{self.cron!r} is not valid: {exc}") from None

    def next_after(self, instant: datetime) -> datetime:
        """The first tick strictly after `instant`."""
        if self.every_seconds is not None:
            steps = math.floor((instant - EPOCH).total_seconds() / self.every_seconds) + 1
            tick = EPOCH + timedelta(seconds=steps * self.every_seconds)
            # float rounding must never give back `instant` itself or an earlier tick
            return tick if tick > instant else tick + timedelta(seconds=self.every_seconds)
        assert self.cron is not None
        local = instant.astimezone(_zone(self.timezone))
        return next(CronSim(self.cron, local)).astimezone(UTC)

    def latest_at_or_before(self, instant: datetime) -> datetime:
        """The last tick at or before `instant`, found without walking the ticks in between
        (a `* * * * *` schedule down for a year is half a million of them)."""
        if self.every_seconds is not None:
            steps = math.floor((instant - EPOCH).total_seconds() / self.every_seconds)
            tick = EPOCH + timedelta(seconds=steps * self.every_seconds)
            return tick if tick <= instant else tick - timedelta(seconds=self.every_seconds)
        assert self.cron is not None
        local = (instant + timedelta(minutes=1)).astimezone(_zone(self.timezone))
        for tick in CronSim(self.cron, local, reverse=True):
            if tick.astimezone(UTC) <= instant:
                return tick.astimezone(UTC)
        raise AssertionError("unreachable: a valid cron expression always has an earlier tick")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            "timezone", f"{name!r} is not an IANA time zone, e.g. UTC or Europe/Paris"
        ) from None


@dataclass(frozen=True)
class Firing:
    """What one scheduler pass does for one schedule: the ticks to enqueue a job for, whether
    missed ticks were folded into one job or skipped, and the next tick to wait for."""

    ticks: list[datetime]
    missed: bool
    next_run_at: datetime


def plan(
    timing: Timing,
    next_run_at: datetime,
    now: datetime,
    *,
    catch_up: str,
    grace_seconds: float,
    max_ticks: int,
) -> Firing:
    """Late ticks (the scheduler polls; a process was slow) each get their job, in order. When
    even the first due tick is older than `grace_seconds`, every worker was down: the ticks in
    between were missed, and `catch_up` decides: 'one' enqueues one job (for the latest tick),
    'skip' none."""
    if next_run_at > now:
        return Firing([], False, next_run_at)
    following = timing.next_after(now)
    ticks: list[datetime] = []
    tick = next_run_at
    late = (now - next_run_at).total_seconds() > grace_seconds
    while not late and tick <= now:
        ticks.append(tick)
        late = len(ticks) > max_ticks
        tick = timing.next_after(tick)
    if not late:
        return Firing(ticks, False, following)
    # next_run_at is due, so at least one tick was missed whatever the timing says now
    latest = max(timing.latest_at_or_before(now), next_run_at)
    if catch_up == "skip":
        return Firing([], True, following)
    return Firing([latest], True, following)


# The shortest interval a new schedule may have: each tick is a job, a transaction and a
# claim, and 0.01 s made a hundred of each per second per schedule.
MIN_EVERY_SECONDS = 1.0


def new_timing(cron: str | None, every_seconds: float | None, timezone: str = "UTC") -> Timing:
    """The timing of a schedule being made (API, CLI, @registry.periodic): Timing's checks and
    the minimum interval. Schedules already stored are read with Timing alone."""
    if every_seconds is not None and every_seconds < MIN_EVERY_SECONDS:
        raise InvalidSchedule(
            "every_seconds", f"must be at least {MIN_EVERY_SECONDS:g} second, got {every_seconds:g}"
        )
    return Timing(cron, every_seconds, timezone)
