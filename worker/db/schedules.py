"""Schedules: periodic jobs defined by a cron expression or a fixed interval, stored in the
`schedules` table, and the scheduler's pass that turns due ticks into jobs.

Exactly one job per tick: a pass locks the due rows with SKIP LOCKED, enqueues each tick's job
and moves next_run_at past it in the same transaction, so a second process either waits for
none of it or sees it all. Each job also carries the idempotency key
`schedule:<name>:<tick>`, so even a schedule deleted and made again never runs a tick twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from worker.db import sql_files
from worker.db.claims import Conn
from worker.db.jobs import Executor, NewJob, enqueue_many
from worker.ticks import Firing, Timing, plan

_sql = sql_files.statements("schedules")

CATCH_UP_MODES = ("one", "skip")


@dataclass(frozen=True)
class JobSpec:
    """What each tick enqueues. `tick_field`, when set, names the payload key that receives the
    tick's time (ISO 8601, UTC)."""

    job_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    queue_name: str = "default"
    priority: int = 0
    max_tries: int = 3
    tick_field: str | None = None

    def to_json(self) -> str:
        value: dict[str, Any] = {
            "job_type": self.job_type,
            "payload": self.payload,
            "queue_name": self.queue_name,
            "priority": self.priority,
            "max_tries": self.max_tries,
        }
        if self.tick_field is not None:
            value["tick_field"] = self.tick_field
        return json.dumps(value, allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> JobSpec:
        return cls(
            job_type=value["job_type"],
            payload=dict(value.get("payload") or {}),
            queue_name=value.get("queue_name") or "default",
            priority=int(value.get("priority") or 0),
            max_tries=int(value.get("max_tries") or 3),
            tick_field=value.get("tick_field"),
        )

    def job_for(self, schedule: str, tick: datetime) -> NewJob:
        payload = self.payload
        tick_text = tick.astimezone(UTC).isoformat()
        if self.tick_field is not None:
            payload = {**payload, self.tick_field: tick_text}
        return NewJob(
            job_type=self.job_type,
            payload=payload,
            queue_name=self.queue_name,
            priority=self.priority,
            max_tries=self.max_tries,
            idempotency_key=tick_key(schedule, tick),
        )


def tick_key(schedule: str, tick: datetime) -> str:
    return f"schedule:{schedule}:{tick.astimezone(UTC).isoformat()}"


@dataclass(frozen=True)
class ScheduleDef:
    name: str
    timing: Timing
    job: JobSpec
    catch_up: str = "one"

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        if self.catch_up not in CATCH_UP_MODES:
            raise ValueError(f"catch_up must be one of {', '.join(CATCH_UP_MODES)}")

    def row_values(self, now: datetime) -> tuple[Any, ...]:
        t = self.timing
        first = t.next_after(now)
        return (self.name, t.cron, t.every_seconds, t.timezone, self.job.to_json(), self.catch_up,
                first)  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    """A schedule as users see it."""

    name: str
    cron: str | None
    every_seconds: float | None
    timezone: str
    job: dict[str, Any]
    paused: bool
    catch_up: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: int | None
    last_job_status: str | None
    source: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> Schedule:
        job = row["job"]
        return cls(
            name=row["name"],
            cron=row["cron"],
            every_seconds=row["every_seconds"],
            timezone=row["timezone"],
            job=json.loads(job) if isinstance(job, str) else dict(job),
            paused=row["paused"],
            catch_up=row["catch_up"],
            next_run_at=row["next_run_at"],
            last_run_at=row["last_run_at"],
            last_job_id=row["last_job_id"],
            last_job_status=row["last_job_status"],
            source=row["source"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def _now() -> datetime:
    return datetime.now(UTC)


async def upsert_schedule(executor: Executor, schedule: ScheduleDef, source: str = "api") -> bool:
    """Create or replace; True when it was created."""
    return bool(
        await executor.fetchval(_sql("schedules_upsert"), *schedule.row_values(_now()), source)
    )


async def sync_code_schedules(executor: Executor, schedules: Sequence[ScheduleDef]) -> list[str]:
    """Write what the code declares; returns the names that were created or changed."""
    changed = []
    for schedule in schedules:
        name = await executor.fetchval(
            _sql("schedules_upsert_from_code"), *schedule.row_values(_now())
        )
        if name is not None:
            changed.append(name)
    return changed


async def count_other_schedules(executor: Executor, name: str) -> int:
    """Schedules besides `name`: whether one more fits under the API's cap."""
    return int(await executor.fetchval(_sql("schedules_count_other"), name))


async def list_schedules(executor: Executor) -> list[Schedule]:
    rows = await executor.fetch(_sql("schedules_list"), None)
    return [Schedule.from_record(row) for row in rows]


async def get_schedule(executor: Executor, name: str) -> Schedule | None:
    rows = await executor.fetch(_sql("schedules_list"), name)
    return Schedule.from_record(rows[0]) if rows else None


async def delete_schedule(executor: Executor, name: str) -> bool:
    return await executor.fetchval(_sql("schedules_delete"), name) is not None


async def set_paused(executor: Executor, name: str, paused: bool) -> Schedule | None:
    """Pause, or resume from the next tick after now; None when there is no such schedule."""
    current = await get_schedule(executor, name)
    if current is None:
        return None
    timing = Timing(current.cron, current.every_seconds, current.timezone)
    await executor.fetchval(_sql("schedules_set_paused"), name, paused, timing.next_after(_now()))
    return await get_schedule(executor, name)


@dataclass
class Pass:
    """One scheduler pass: the jobs it enqueued (schedule, tick, job id), the schedules whose
    missed ticks were folded into one job or skipped, those whose job could not be enqueued
    (name, why), and when to look again."""

    enqueued: list[tuple[str, datetime, int]]
    caught_up: list[str]
    failed: list[tuple[str, str]]
    next_due_seconds: float | None


@dataclass(frozen=True)
class _Planned:
    name: str
    firing: Firing
    jobs: list[NewJob]


async def fire_due(
    conn: Conn, *, grace_seconds: float, max_ticks: int = 100, limit: int = 100
) -> Pass:
    """Enqueue the jobs of every due tick, in one transaction of four statements however many
    schedules are due (so the worker's pool is not held for long); a schedule whose job cannot
    be enqueued (a spec PostgreSQL refuses) is moved past its tick and reported, never retried
    in a tight loop."""
    result = Pass([], [], [], None)
    async with conn.transaction():
        planned: list[_Planned] = []
        for row in await conn.fetch(_sql("schedules_lock_due"), limit):
            try:
                planned.append(_plan(row, grace_seconds, max_ticks))
            except (ValueError, KeyError, TypeError) as exc:
                await _give_up(conn, row["name"], _after_failure(row), exc, result)
        try:
            async with conn.transaction():  # a savepoint
                await _enqueue(conn, planned, result)
        except _REFUSED:
            # one schedule's job broke the statement: again one by one, so only it is skipped
            for one in planned:
                try:
                    async with conn.transaction():
                        await _enqueue(conn, [one], result)
                except _REFUSED as exc:
                    await _give_up(conn, one.name, one.firing.next_run_at, exc, result)
        result.next_due_seconds = await conn.fetchval(_sql("schedules_next_due"))
    return result


_REFUSED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


def _plan(row: asyncpg.Record, grace_seconds: float, max_ticks: int) -> _Planned:
    timing = Timing(row["cron"], row["every_seconds"], row["timezone"])
    firing = plan(
        timing,
        row["next_run_at"],
        row["now"],
        catch_up=row["catch_up"],
        grace_seconds=grace_seconds,
        max_ticks=max_ticks,
    )
    spec = JobSpec.from_value(json.loads(row["job"]))
    return _Planned(row["name"], firing, [spec.job_for(row["name"], t) for t in firing.ticks])


async def _enqueue(conn: Conn, planned: Sequence[_Planned], result: Pass) -> None:
    pairs = iter(await enqueue_many(conn, [job for one in planned for job in one.jobs]))
    runs: list[tuple[str, datetime, datetime | None, int | None]] = []
    enqueued: list[tuple[str, datetime, int]] = []
    for one in planned:
        ids = [next(pairs)[0].id for _ in one.jobs]
        enqueued.extend(zip([one.name] * len(ids), one.firing.ticks, ids, strict=True))
        last_tick = one.firing.ticks[-1] if ids else None
        runs.append((one.name, one.firing.next_run_at, last_tick, ids[-1] if ids else None))
    await _record_runs(conn, runs)
    result.enqueued.extend(enqueued)  # only once the statements went through
    result.caught_up.extend(one.name for one in planned if one.firing.missed)


async def _record_runs(
    conn: Conn, runs: Sequence[tuple[str, datetime, datetime | None, int | None]]
) -> None:
    if runs:
        columns = [list(column) for column in zip(*runs, strict=True)]
        await conn.execute(_sql("schedules_record_runs"), *columns)


async def _give_up(
    conn: Conn, name: str, following: datetime, exc: Exception, result: Pass
) -> None:
    """Move a schedule past the tick its job could not be enqueued for, and report it."""
    result.failed.append((name, f"{type(exc).__name__}: {exc}"))
    await _record_runs(conn, [(name, following, None, None)])


def _after_failure(row: asyncpg.Record) -> datetime:
    try:
        return Timing(row["cron"], row["every_seconds"], row["timezone"]).next_after(row["now"])
    except ValueError:  # the timing itself is broken (a time zone gone from the system)
        return row["now"] + timedelta(minutes=1)
