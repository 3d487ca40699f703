"""The console's pages and actions over the real app and PostgreSQL (the browser tests in
tests/browser drive the same pages through Chromium)."""

from __future__ import annotations

import html
import json

import asyncpg
import pytest

from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings
from tests.integration.console_support import CONSOLE, confirmed_post, csrf_of, login
from worker.db.jobs import NewJob, enqueue
from worker.db.workflows import enqueue_job

PAGES = ["", "/jobs", "/workers", "/schedules", "/scaling", "/overview/queues", "/workers/rows"]


async def failed_job(dsn: str, queue: str = "mail", job_type: str = "emails") -> int:
    conn = await asyncpg.connect(dsn)
    try:
        job, _ = await enqueue(conn, NewJob(job_type, dict(SEED_JOB["payload"]), queue_name=queue))
        await conn.execute(
            "UPDATE jobs SET status = 'failed', attempts = 3, last_error = 'boom',"
            " finished_at = now() WHERE id = $1",
            job.id,
        )
        return job.id
    finally:
        await conn.close()


async def test_every_page_renders_on_an_empty_database(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        for page in PAGES:
            response = await client.get(CONSOLE + page)
            assert response.status_code == 200, (page, response.text)
            assert "text/html" in response.headers["content-type"]
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert (await client.get(f"{CONSOLE}/static/htmx.min.js")).status_code == 200


async def test_overview_counts_each_queue(pg_dsn: str) -> None:
    await failed_job(pg_dsn, queue="mail")
    async with api_client(api_settings(pg_dsn)) as client:
        for extra in ({}, {"delay_seconds": 600}):
            body = {**SEED_JOB, "queue_name": "mail", **extra}
            assert (await client.post(JOBS, json=body)).status_code == 201
        rows = (await client.get(f"{CONSOLE}/overview/queues")).text
    assert 'data-queue="mail"' in rows
    assert 'data-count="ready">1<' in rows
    assert 'data-count="scheduled">1<' in rows
    assert 'status=failed&amp;queue=mail">1<' in rows


async def test_failed_job_found_by_filter_and_retried(pg_dsn: str) -> None:
    job_id = await failed_job(pg_dsn)
    await failed_job(pg_dsn, queue="other")
    async with api_client(api_settings(pg_dsn)) as client:
        listing = await client.get(f"{CONSOLE}/jobs", params={"status": "failed", "queue": "mail"})
        assert f'data-job="{job_id}"' in listing.text
        assert listing.text.count("data-job=") == 1
        done = await confirmed_post(
            client, f"{CONSOLE}/jobs/{job_id}", f"{CONSOLE}/jobs/{job_id}/retry"
        )
        assert done.status_code == 303
        page = await client.get(done.headers["location"])
        assert "Job retried" in page.text
        assert (await client.get(f"{JOBS}/{job_id}")).json()["status"] == "pending"


async def test_bulk_retry_by_filter(pg_dsn: str) -> None:
    ids = [await failed_job(pg_dsn, queue="mail") for _ in range(3)]
    other = await failed_job(pg_dsn, queue="other")
    async with api_client(api_settings(pg_dsn)) as client:
        page = f"{CONSOLE}/jobs?status=failed&queue=mail"
        assert "Retry all 3 failed jobs" in (await client.get(page)).text
        done = await confirmed_post(client, page, f"{CONSOLE}/jobs/retry", queue="mail", type="")
        assert done.status_code == 303 and "n=3" in done.headers["location"]
        for job_id in ids:
            assert (await client.get(f"{JOBS}/{job_id}")).json()["status"] == "pending"
        assert (await client.get(f"{JOBS}/{other}")).json()["status"] == "failed"


async def test_queue_paused_and_resumed(pg_dsn: str, conn: asyncpg.Connection) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        await client.post(JOBS, json={**SEED_JOB, "queue_name": "mail"})
        done = await confirmed_post(client, CONSOLE, f"{CONSOLE}/queues/mail/pause")
        assert done.status_code == 303
        assert 'badge paused">paused' in (await client.get(done.headers["location"])).text
        assert (await client.get(f"{CONSOLE}/jobs")).status_code == 200
        done = await confirmed_post(client, CONSOLE, f"{CONSOLE}/queues/mail/resume")
        rows = (await client.get(f"{CONSOLE}/overview/queues")).text
        assert 'badge active">active' in rows
    assert await conn.fetchval("SELECT paused FROM queues WHERE name = 'mail'") is False


async def test_a_queue_with_no_job_is_paused_by_name(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        done = await confirmed_post(client, CONSOLE, f"{CONSOLE}/queues/pause", name=" nightly ")
        assert done.status_code == 303
        rows = (await client.get(f"{CONSOLE}/overview/queues")).text
        assert 'data-queue="nightly"' in rows and 'badge paused">paused' in rows
        token = csrf_of(await client.get(CONSOLE))
        empty = await client.post(f"{CONSOLE}/queues/pause", data={"csrf_token": token})
        assert empty.status_code == 404


async def test_search_by_id_and_by_key(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        created = await client.post(JOBS, json={**SEED_JOB, "idempotency_key": "order-42"})
        job_id = created.json()["id"]
        for term in (str(job_id), "order-42"):
            found = await client.get(f"{CONSOLE}/jobs", params={"q": term})
            assert f'data-job="{job_id}"' in found.text, term
        page = await client.get(f"{CONSOLE}/jobs/{job_id}")
        assert page.status_code == 200 and "order-42" in page.text


async def test_scaling_page_shows_a_decision(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO scaling_decisions (namespace, deployment, from_replicas, to_replicas,"
            " reason, detail) VALUES ('jobs', 'workers', 0, 3, 'scale-up', '{\"depth\": 30}')"
        )
    finally:
        await conn.close()
    async with api_client(api_settings(pg_dsn)) as client:
        page = (await client.get(f"{CONSOLE}/scaling")).text
    assert 'data-deployment="jobs/workers"' in page
    assert "scale-up" in page and "0 → 3" in page and "depth=30" in page


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "nope"}, "status"),
        ({"queue": "x" * 300}, "queue"),
        ({"type": "a\x00b"}, "type"),
        ({"q": "9" * 30}, "q"),
        ({"before": "-1"}, "before"),
        ({"limit": "7"}, "limit"),
    ],
)
async def test_unparseable_filters_mark_the_field(
    pg_dsn: str, query: dict[str, str], field: str
) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        page = await client.get(f"{CONSOLE}/jobs", params=query)
    assert page.status_code == 422
    assert f'id="{field}-error"' in page.text


async def test_unknown_job_and_page_get_404_pages(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        for path in ("/jobs/999999", "/jobs/abc", "/jobs/99999999999999999999", "/nowhere"):
            page = await client.get(CONSOLE + path)
            assert page.status_code == 404, path
            assert "Not found" in page.text and "text/html" in page.headers["content-type"]
        scaling = await client.get(f"{CONSOLE}/scaling", params={"hours": "x"})
        assert scaling.status_code == 422 and 'id="hours-error"' in scaling.text


async def test_actions_without_a_valid_csrf_token_get_403(pg_dsn: str) -> None:
    job_id = await failed_job(pg_dsn)
    async with api_client(api_settings(pg_dsn)) as client:
        action = f"{CONSOLE}/jobs/{job_id}/retry"
        fresh = await client.post(action, data={"confirmed": "yes"})
        assert fresh.status_code == 403
        await client.get(CONSOLE)  # now the browser has its nonce cookie
        for data in ({"confirmed": "yes"}, {"confirmed": "yes", "csrf_token": "0" * 64}):
            assert (await client.post(action, data=data)).status_code == 403
        assert (await client.post(f"{CONSOLE}/queues/q/pause", data={})).status_code == 403
        assert (await client.get(f"{JOBS}/{job_id}")).json()["status"] == "failed"


async def test_token_is_asked_once_and_kept_in_a_strict_cookie(pg_dsn: str) -> None:
    token = "console-s3cret"
    async with api_client(api_settings(pg_dsn, api_token=token)) as client:
        first = await client.get(f"{CONSOLE}/jobs")
        assert first.status_code == 303 and "/console/login" in first.headers["location"]
        wrong = await login(client, "not-it")
        assert wrong.status_code == 401 and "That token is not" in wrong.text
        ok = await login(client, token)
        assert ok.status_code == 303 and ok.headers["location"] == f"{CONSOLE}/jobs"
        cookie = next(c for c in ok.headers.get_list("set-cookie") if "session" in c)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie
        for page in PAGES:
            assert (await client.get(CONSOLE + page)).status_code == 200, page
        page = await client.get(CONSOLE)
        out = await client.post(f"{CONSOLE}/logout", data={"csrf_token": csrf_of(page)})
        assert out.status_code == 303
        assert (await client.get(f"{CONSOLE}/jobs")).status_code == 303


async def test_schedules_and_workers_pages_show_their_rows(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    job_id = await failed_job(pg_dsn, queue="reports")
    await conn.execute(
        "INSERT INTO schedules (name, every_seconds, job, next_run_at, last_run_at,"
        " last_job_id) VALUES ('digest', 900, '{\"job_type\": \"emails\"}',"
        " now() + interval '5 minutes', now() - interval '10 minutes', $1)",
        job_id,
    )
    await conn.execute(
        "INSERT INTO workers (id, name, queues, concurrency, lease_expires_at)"
        " VALUES (gen_random_uuid(), 'worker-a', ARRAY['reports'], 4,"
        " now() + interval '1 minute')"
    )
    async with api_client(api_settings(pg_dsn)) as client:
        schedules = (await client.get(f"{CONSOLE}/schedules")).text
        workers = (await client.get(f"{CONSOLE}/workers/rows")).text
    assert "digest" in schedules and "every 900 s" in schedules
    assert f'href="/console/jobs/{job_id}"' in schedules and 'badge failed">failed' in schedules
    assert "worker-a" in workers and "0/4" in workers


async def test_a_job_page_links_its_dependencies(pg_dsn: str, conn: asyncpg.Connection) -> None:
    first, _ = await enqueue(conn, NewJob("noop", delay_seconds=3600))
    second, _ = await enqueue(conn, NewJob("noop", delay_seconds=3600))
    child = await enqueue_job(conn, NewJob("noop"), depends_on=[first.id, second.id])
    async with api_client(api_settings(pg_dsn)) as client:
        page = await client.get(f"{CONSOLE}/jobs/{child}")
        assert page.status_code == 200, page.text
        for dependency in (first.id, second.id):
            assert f'href="{CONSOLE}/jobs/{dependency}"' in page.text, page.text


@pytest.mark.parametrize("result", ["hello", "[1, 2]", "", None, 7, {"a": "b"}])
async def test_a_job_page_shows_any_json_result(
    pg_dsn: str, conn: asyncpg.Connection, result: object
) -> None:
    """A task that returns a string (the docs' shortest program does) has a JSON string for its
    result; the page once parsed it a second time and answered 500."""
    job, _ = await enqueue(conn, NewJob("noop", {"text": "hello"}))
    await conn.execute(
        "UPDATE jobs SET status = 'completed', finished_at = now(), result = $2::text::jsonb"
        " WHERE id = $1",
        job.id,
        None if result is None else json.dumps(result),
    )
    async with api_client(api_settings(pg_dsn)) as client:
        page = await client.get(f"{CONSOLE}/jobs/{job.id}")
    assert page.status_code == 200, page.text
    if isinstance(result, str) and result:
        assert html.escape(result) in page.text
