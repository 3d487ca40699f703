"""Every enqueue path gives the same row for the same job: the API (one job, and a batch), the
Python data layer (plain and brief batches, unique jobs), the clients and jobqueue_enqueue()
in SQL, a workflow batch, a batch's callback and a schedule's tick, on real PostgreSQL. Each
path takes what it can express of each case; the rows are compared but for what must differ
(id, creation time, and the keys, each checked to be the one given). And PostgreSQL inlines
the row's builder, jobqueue_new_job, into the batch statements (tests/unit/test_new_job_row.py
checks that every INSERT INTO jobs uses it)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from tests.integration.api_support import JOBS, api_client, api_settings
from worker import client
from worker.db import schedules, sql_files
from worker.db.jobs import NewJob, enqueue_many, enqueue_many_brief
from worker.db.workflows import WorkflowItem, enqueue_batch
from worker.job_checks import prepare_job
from worker.ticks import Timing

FIELDS = {
    "job_type": "same-row",
    "payload": {"n": 1, "text": "é"},
    "queue_name": "rows",
    "priority": 7,
    "max_tries": 5,
}
EXTRAS = {"timeout_seconds": 42.5, "concurrency_key": "tenant-1"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
# name -> what the job is given beyond FIELDS; "{path}" in a key is the path's name, so that
# every path's key is its own. `after` and `before`: the ids of a pending and a failed job.
CASES: dict[str, dict[str, Any]] = {
    "tick-shaped": {"idempotency_key": "{path}-tick"},
    "at": {**EXTRAS, "run_at": datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)},
    "delayed": {**EXTRAS, "delay_seconds": 90.25},
    "idempotent": {**EXTRAS, "idempotency_key": "{path}-idem"},
    "unique": {**EXTRAS, "unique_key": "{path}-unique"},
    "blocked": {**EXTRAS, "depends_on": "after"},
    "cancelled": {**EXTRAS, "depends_on": "before"},
    "traced": {**EXTRAS, "traceparent": TRACEPARENT},
    "traced-unique": {**EXTRAS, "traceparent": TRACEPARENT, "unique_key": "{path}-traced"},
}


@dataclass
class Env:
    conn: asyncpg.Connection
    api: httpx.AsyncClient


Path = Callable[[Env, dict[str, Any]], Awaitable[int]]


def _new_job(job: dict[str, Any]) -> NewJob:
    return NewJob(**{k: v for k, v in job.items() if k != "depends_on"})


def _options(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k not in ("job_type", "payload", "traceparent")}


def _body(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in job.items()}


async def _api_one(env: Env, job: dict[str, Any]) -> int:
    response = await env.api.post(JOBS, json=_body(job))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _api_batch(env: Env, job: dict[str, Any]) -> int:
    response = await env.api.post(f"{JOBS}/batch", json={"jobs": [_body(job)]})
    assert response.status_code == 201, response.text
    return int(response.json()["jobs"][0]["id"])


async def _many(env: Env, job: dict[str, Any]) -> int:
    return (await enqueue_many(env.conn, [_new_job(job)]))[0][0].id


async def _many_brief(env: Env, job: dict[str, Any]) -> int:
    return (await enqueue_many_brief(env.conn, [_new_job(job)]))[0][0].id


async def _workflow(env: Env, job: dict[str, Any]) -> int:
    item = WorkflowItem(_new_job(job), depends_on=job.get("depends_on", []))
    return (await enqueue_batch(env.conn, [item])).jobs[0][0]


async def _sql(env: Env, job: dict[str, Any]) -> int:
    """jobqueue_enqueue() as a SQL caller writes it, every argument by name."""
    names = ("job_type queue_name priority max_tries run_at delay_seconds idempotency_key "
             "timeout_seconds concurrency_key unique_key depends_on").split()  # fmt: skip
    arguments = ", ".join(f"{name} => ${i}" for i, name in enumerate(names, 2))
    return await env.conn.fetchval(
        f"SELECT jobqueue_enqueue(payload => $1::text::jsonb, {arguments})",
        json.dumps(job["payload"]),
        *(job.get(name) for name in names),
    )


async def _client(env: Env, job: dict[str, Any]) -> int:
    return await client.enqueue(env.conn, job["job_type"], job["payload"], **_options(job))


async def _client_many(env: Env, job: dict[str, Any]) -> int:
    prepared = prepare_job(job["job_type"], job["payload"], _options(job))
    return (await client.enqueue_many(env.conn, [prepared]))[0]


async def _callback(env: Env, job: dict[str, Any]) -> int:
    """A batch's callback (jobqueue_batch_callback): its batch is done at once, since its one
    job is born cancelled."""
    failed = await _failed_job(env.conn)
    trigger = WorkflowItem(NewJob("trigger"), depends_on=[failed])
    done = await enqueue_batch(env.conn, [trigger], on_complete=_new_job(job))
    assert done.callback_job_id is not None
    return done.callback_job_id


async def _tick(env: Env, job: dict[str, Any]) -> int:
    spec = schedules.JobSpec(**{k: job[k] for k in FIELDS})
    definition = schedules.ScheduleDef("same-row", Timing(every_seconds=3600), spec)
    await schedules.upsert_schedule(env.conn, definition)
    await env.conn.execute(
        "UPDATE schedules SET next_run_at = now() - interval '1 second' WHERE name = 'same-row'"
    )
    done = await schedules.fire_due(env.conn, grace_seconds=60)
    ((name, tick, job_id),) = done.enqueued
    job["idempotency_key"] = schedules.tick_key(name, tick)  # the tick's own, not the case's
    return job_id


# path -> (how it enqueues, the cases it can express)
EVERY_CASE = set(CASES)
UNTRACED = EVERY_CASE - {"traced", "traced-unique"}  # paths that take no traceparent
PATHS: dict[str, tuple[Path, set[str]]] = {
    "api-one": (_api_one, UNTRACED),
    "api-batch": (_api_batch, UNTRACED),
    "enqueue_many": (_many, EVERY_CASE - {"blocked", "cancelled"}),
    "enqueue_many_brief": (_many_brief, EVERY_CASE - {"blocked", "cancelled"}),
    "workflow": (_workflow, EVERY_CASE),
    "jobqueue_enqueue": (_sql, UNTRACED),
    "client": (_client, UNTRACED),
    "client-many": (_client_many, UNTRACED),
    "callback": (_callback, {"tick-shaped", "at", "delayed", "idempotent"}),
    "tick": (_tick, {"tick-shaped"}),
}


async def _failed_job(conn: asyncpg.Connection) -> int:
    job_id = (await enqueue_many(conn, [NewJob("dependency")]))[0][0].id
    await conn.execute(
        "UPDATE jobs SET status = 'failed', finished_at = now() WHERE id = $1", job_id
    )
    return job_id


async def _row(conn: asyncpg.Connection, job_id: int, given: dict[str, Any]) -> dict[str, Any]:
    """The job's row, with what must differ between paths checked and taken out: times become
    offsets from created_at, and a key becomes whether it is the one given."""
    row = dict(await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id))
    created = row.pop("created_at")
    del row["id"]
    for name in ("run_at", "finished_at"):
        if row[name] is not None and not (name == "run_at" and "run_at" in given):
            row[name] = (row[name] - created).total_seconds()
    for key in ("idempotency_key", "unique_key"):
        row[key] = row[key] == given[key] if key in given else row[key]
    payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
    for added in ("batch_id", "counts"):  # what a callback adds to its spec's payload
        payload.pop(added, None)
    row["payload"] = payload
    return row


async def test_every_enqueue_path_gives_the_same_row(pg_dsn: str, conn: asyncpg.Connection) -> None:
    after = (await enqueue_many(conn, [NewJob("dependency")]))[0][0].id
    before = await _failed_job(conn)
    settings = api_settings(pg_dsn, allow_unknown_job_types=True)
    differences = []
    async with api_client(settings) as api:
        env = Env(conn, api)
        for case, extra in CASES.items():
            rows: dict[str, dict[str, Any]] = {}
            for name, (path, cases) in PATHS.items():
                if case not in cases:
                    continue
                job = {**FIELDS, **extra}
                for key in ("idempotency_key", "unique_key"):
                    if key in job:
                        job[key] = job[key].format(path=name)
                if "depends_on" in job:
                    job["depends_on"] = [after if job["depends_on"] == "after" else before]
                job_id = await path(env, job)
                rows[name] = await _row(conn, job_id, job)
            first, *others = rows
            for other in others:
                if rows[other] != rows[first]:
                    differences.append(f"{case}: {other} {rows[other]} != {first} {rows[first]}")
    assert not differences, "\n".join(differences)


async def test_the_builder_is_inlined_into_the_batch_statements(conn: asyncpg.Connection) -> None:
    """A plpgsql builder, or one PostgreSQL cannot inline, would show as a function scan (or a
    call) per statement in the plan, and cost a call per row of every batch."""
    arguments = [None, "[{}, {}]", None, None, None, None, None, None, None, None, None,
                 "noop", "default", 0, 3]  # fmt: skip
    planned = [[10**9, 10**9 + 1], None, None, None, "pending", None, False, None, None, None]
    for stem, name, values in (
        ("jobs", "insert_jobs", arguments),
        ("jobs", "insert_jobs_brief", arguments),
        ("jobs", "insert_planned_jobs", arguments + planned),
        ("unique_jobs", "insert_unique_job",
         ["noop", "{}", "default", 0, None, None, 3, None, None, "k", None, None]),
    ):  # fmt: skip
        plan = await conn.fetch(f"EXPLAIN (VERBOSE) {sql_files.query(stem, name)}", *values)
        text = "\n".join(line[0] for line in plan)
        assert "jobqueue_new_job" not in text, f"{stem}.{name} calls the builder:\n{text}"
