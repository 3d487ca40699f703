"""Schedules against real PostgreSQL: the API (create, replace, list, pause, resume, delete and
its 422s), the scheduler's passes (one job per tick, the payload's tick time, catch-up after
an outage) and `@registry.periodic` schedules written by a worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.integration.api_support import api_client, api_settings
from tests.integration.queue_support import fetch, worker_settings
from worker.db import schedules
from worker.handlers.base import HandlerRegistry, JobContext
from worker.runtime.scheduler import Scheduler

SCHEDULES = "/api/v1/queue/schedules"
NOOP_EVERY_MINUTE = {"name": "m", "cron": "* * * * *", "job": {"job_type": "noop"}}


def _scheduler(pool: asyncpg.Pool, dsn: str, registry: HandlerRegistry | None = None) -> Scheduler:
    declared = registry.schedules() if registry else []
    return Scheduler(pool, worker_settings(dsn, schedule_grace_seconds=30.0).worker, declared)


async def test_api_creates_lists_replaces_pauses_resumes_and_deletes(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        body = {
            "name": "nightly",
            "cron": "0 2 * * *",
            "timezone": "Europe/Paris",
            "job": {"job_type": "noop", "payload": {"a": 1}, "queue_name": "reports"},
        }
        created = await client.post(SCHEDULES, json=body)
        assert created.status_code == 201, created.text
        shown = created.json()
        assert shown["paused"] is False and shown["source"] == "api"
        assert shown["last_run_at"] is None and shown["last_job_id"] is None
        next_run = datetime.fromisoformat(shown["next_run_at"])
        assert next_run > datetime.now(UTC)
        assert next_run.astimezone(ZoneInfo("Europe/Paris")).hour == 2

        # the same timing again: replaced (200), the next tick does not move
        again = await client.post(SCHEDULES, json={**body, "job": {"job_type": "noop"}})
        assert again.status_code == 200 and again.json()["next_run_at"] == shown["next_run_at"]
        assert again.json()["job"]["queue_name"] == "default"

        listed = (await client.get(SCHEDULES)).json()["schedules"]
        assert [s["name"] for s in listed] == ["nightly"]
        paused = await client.post(f"{SCHEDULES}/nightly/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True
        resumed = await client.post(f"{SCHEDULES}/nightly/resume")
        assert resumed.json()["paused"] is False
        assert (await client.get(f"{SCHEDULES}/nightly")).status_code == 200
        assert (await client.delete(f"{SCHEDULES}/nightly")).status_code == 204
        assert (await client.get(f"{SCHEDULES}/nightly")).status_code == 404
        assert (await client.delete(f"{SCHEDULES}/nightly")).status_code == 404
        assert (await client.post(f"{SCHEDULES}/nightly/pause")).status_code == 404


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"cron": "61 * * * *"}, ["body", "cron"]),
        ({"cron": "every day"}, ["body", "cron"]),
        ({"timezone": "Atlantis/Capital"}, ["body", "timezone"]),
        ({"cron": None, "every_seconds": 0}, ["body", "every_seconds"]),
        ({"cron": None, "every_seconds": -1}, ["body", "every_seconds"]),
        ({"every_seconds": 10}, ["body", "cron"]),
        ({"cron": None}, ["body", "cron"]),
        ({"job": {"job_type": "no_such_type"}}, ["body", "job", "job_type"]),
        ({"job": {"job_type": "emails", "payload": {}}}, ["body", "job", "payload"]),
        ({"catch_up": "all"}, ["body", "catch_up"]),
        ({"name": ""}, ["body", "name"]),
    ],
)
async def test_bad_schedules_get_422_naming_the_field(
    pg_dsn: str, change: dict[str, object], loc: list[str]
) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        response = await client.post(SCHEDULES, json={**NOOP_EVERY_MINUTE, **change})
        assert response.status_code == 422, response.text
        locs = [d["loc"][: len(loc)] for d in response.json()["detail"]]
        assert loc in locs, response.text
        assert (await client.get(SCHEDULES)).json()["schedules"] == []


async def _set_next_run(dsn: str, name: str, when: datetime) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE schedules SET next_run_at = $2 WHERE name = $1", name, when)
    finally:
        await conn.close()


async def _jobs(dsn: str) -> list[asyncpg.Record]:
    return await fetch(dsn, "SELECT * FROM jobs ORDER BY id")


async def test_due_ticks_enqueue_one_job_each_with_the_tick_time(
    pg_dsn: str, pool: asyncpg.Pool
) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        body = {
            "name": "tick",
            "every_seconds": 60,
            "job": {"job_type": "noop", "payload": {"k": "v"}, "tick_field": "tick"},
        }
        assert (await client.post(SCHEDULES, json=body)).status_code == 201
        first = datetime.now(UTC).replace(second=0, microsecond=0)  # due; the next is not
        await _set_next_run(pg_dsn, "tick", first)
        scheduler = _scheduler(pool, pg_dsn)
        await scheduler.fire_once()
        await scheduler.fire_once()  # nothing more is due: no second job for that tick
        jobs = await _jobs(pg_dsn)
        assert len(jobs) == 1
        (job,) = jobs
        assert job["idempotency_key"] == f"schedule:tick:{first.isoformat()}"
        payload = json.loads(job["payload"]) if isinstance(job["payload"], str) else job["payload"]
        assert payload == {"k": "v", "tick": first.isoformat()}
        shown = (await client.get(f"{SCHEDULES}/tick")).json()
        assert shown["last_job_id"] == job["id"] and shown["last_job_status"] == "pending"
        assert datetime.fromisoformat(shown["last_run_at"]) == first
        assert datetime.fromisoformat(shown["next_run_at"]) == first + timedelta(minutes=1)


@pytest.mark.parametrize(("catch_up", "expected"), [("one", 1), ("skip", 0)])
async def test_after_an_outage_one_catch_up_job_or_none(
    pg_dsn: str, pool: asyncpg.Pool, catch_up: str, expected: int
) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        body = {**NOOP_EVERY_MINUTE, "catch_up": catch_up}
        assert (await client.post(SCHEDULES, json=body)).status_code == 201
    # every worker was down for two hours: 120 ticks were missed
    await _set_next_run(pg_dsn, "m", datetime.now(UTC) - timedelta(hours=2))
    scheduler = _scheduler(pool, pg_dsn)
    await scheduler.fire_once()
    await scheduler.fire_once()
    assert len(await _jobs(pg_dsn)) == expected
    (shown,) = await schedules.list_schedules(pool)
    assert shown.next_run_at is not None and shown.next_run_at > datetime.now(UTC)


async def test_a_paused_schedule_fires_nothing_and_resumes_from_the_next_tick(
    pg_dsn: str, pool: asyncpg.Pool
) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        assert (await client.post(SCHEDULES, json=NOOP_EVERY_MINUTE)).status_code == 201
        await client.post(f"{SCHEDULES}/m/pause")
        await _set_next_run(pg_dsn, "m", datetime.now(UTC) - timedelta(minutes=5))
        await _scheduler(pool, pg_dsn).fire_once()
        assert await _jobs(pg_dsn) == []
        resumed = (await client.post(f"{SCHEDULES}/m/resume")).json()
        assert datetime.fromisoformat(resumed["next_run_at"]) > datetime.now(UTC)
        await _scheduler(pool, pg_dsn).fire_once()
        assert await _jobs(pg_dsn) == []  # the ticks that fell in the pause are not run


async def test_periodic_handlers_are_written_at_start_and_api_schedules_win(
    pg_dsn: str, pool: asyncpg.Pool
) -> None:
    registry = HandlerRegistry()

    @registry.periodic("cleanup", every_seconds=3600, payload={"deep": False})
    @registry.periodic("cleanup", name="cleanup-deep", cron="0 3 * * 0", payload={"deep": True})
    async def cleanup(payload: dict[str, object], ctx: JobContext) -> None:
        return None

    assert registry.get("cleanup") is not None
    assert [s.name for s in registry.schedules()] == ["cleanup", "cleanup-deep"]
    async with api_client(api_settings(pg_dsn, allow_unknown_job_types=True)) as client:
        mine = {"name": "cleanup-deep", "every_seconds": 5, "job": {"job_type": "noop"}}
        assert (await client.post(SCHEDULES, json=mine)).status_code == 201
        scheduler = _scheduler(pool, pg_dsn, registry)
        await scheduler.sync_declared()
        await scheduler.sync_declared()  # a second worker starting changes nothing
        found = {s["name"]: s for s in (await client.get(SCHEDULES)).json()["schedules"]}
    assert found["cleanup"]["source"] == "code"
    assert found["cleanup"]["job"]["payload"] == {"deep": False}
    assert found["cleanup"]["every_seconds"] == 3600
    assert found["cleanup-deep"]["source"] == "api"  # made through the API: left alone
    assert found["cleanup-deep"]["job"]["job_type"] == "noop"


def test_bad_periodic_declarations_fail_at_import() -> None:
    registry = HandlerRegistry()
    with pytest.raises(ValueError, match="cron"):
        registry.periodic("x", cron="not cron")
    with pytest.raises(ValueError, match="every_seconds"):
        registry.periodic("x", every_seconds=0)
    with pytest.raises(ValueError, match="catch_up"):
        registry.periodic("x", every_seconds=1, catch_up="all")


async def test_a_schedule_whose_job_is_refused_is_skipped_and_spoils_no_other(
    pg_dsn: str, pool: asyncpg.Pool
) -> None:
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    jobs = {
        "good": '{"job_type": "noop"}',
        "too-high": '{"job_type": "noop", "priority": 99999999999}',  # no PostgreSQL integer
        "no-type": '{"payload": {}}',
    }
    conn = await asyncpg.connect(pg_dsn)
    try:
        for name, job in jobs.items():
            await conn.execute(
                "INSERT INTO schedules (name, every_seconds, job, next_run_at)"
                " VALUES ($1, 3600, $2::jsonb, $3)",
                name,
                job,
                due,
            )
        done = await schedules.fire_due(conn, grace_seconds=30)
        assert [name for name, _, _ in done.enqueued] == ["good"]
        assert sorted(name for name, _ in done.failed) == ["no-type", "too-high"]
        moved = await conn.fetch("SELECT name, next_run_at FROM schedules ORDER BY name")
        assert all(row["next_run_at"] > due for row in moved)
        again = await schedules.fire_due(conn, grace_seconds=30)
        assert again.enqueued == [] and again.failed == []
    finally:
        await conn.close()


async def test_a_name_too_long_gets_a_422_naming_it_on_every_route(pg_dsn: str) -> None:
    long = "x" * 201
    async with api_client(api_settings(pg_dsn)) as client:
        for method, path in [
            ("GET", f"{SCHEDULES}/{long}"),
            ("DELETE", f"{SCHEDULES}/{long}"),
            ("POST", f"{SCHEDULES}/{long}/pause"),
            ("POST", f"{SCHEDULES}/{long}/resume"),
        ]:
            answer = await client.request(method, path)
            assert answer.status_code == 422, (method, path, answer.text)
            assert answer.json()["detail"][0]["loc"] == ["path", "name"], answer.text
