"""Counting a schedule's jobs per tick, for the exactly-once tests and bench/bench_ticks.py.
Reads only what the scheduler wrote (each job's tick from its payload), so it can show a
missed, doubled or stray tick."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from worker.ticks import Timing

TICK_FIELD = "tick"


@dataclass(frozen=True)
class TickCount:
    schedule: str
    expected: list[datetime]  # every tick from the first next_run_at to the last one enqueued
    jobs_per_tick: Counter[datetime]

    @property
    def doubled(self) -> list[datetime]:
        return sorted(t for t, n in self.jobs_per_tick.items() if n > 1)

    @property
    def missing(self) -> list[datetime]:
        return [t for t in self.expected if t not in self.jobs_per_tick]

    @property
    def stray(self) -> list[datetime]:
        return sorted(set(self.jobs_per_tick) - set(self.expected))

    @property
    def exact(self) -> bool:
        return not (self.doubled or self.missing or self.stray)

    def summary(self) -> str:
        return (
            f"{self.schedule}: {sum(self.jobs_per_tick.values())} jobs for "
            f"{len(self.expected)} ticks; doubled {len(self.doubled)}, missing "
            f"{len(self.missing)}, stray {len(self.stray)}"
        )


async def count_ticks(
    conn: asyncpg.Connection, schedule: str, timing: Timing, first: datetime
) -> TickCount:
    """`first`: the schedule's next_run_at when it was made."""
    rows = await conn.fetch(
        "SELECT (payload ->> $2)::timestamptz AS tick FROM jobs WHERE idempotency_key LIKE $1",
        f"schedule:{schedule}:%",
        TICK_FIELD,
    )
    per_tick = Counter(row["tick"] for row in rows)
    expected: list[datetime] = []
    if per_tick:
        last = max(per_tick)
        tick = first
        while tick <= last:
            expected.append(tick)
            tick = timing.next_after(tick)
    return TickCount(schedule, expected, per_tick)
