"""The console in a real browser: Debian's headless Chromium, driven by Playwright, against a
real `jobqueue api` process and PostgreSQL."""

from __future__ import annotations

import json
import re

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import TOKEN
from tests.integration.api_support import JOBS, SEED_JOB, ApiProcess
from tests.integration.queue_support import fetchval as sql

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def log_in(page: Page, api: ApiProcess, start: str = "/console") -> None:
    await page.goto(api.url + start)
    await expect(page).to_have_url(re.compile(r"/console/login"))
    await page.get_by_label("API token").fill(TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(api.url + start)


def enqueue(api: ApiProcess, **fields: object) -> int:
    response = httpx.post(api.url + JOBS, json={**SEED_JOB, **fields}, headers=AUTH, timeout=10)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_login_with_a_token(page: Page, console_api: ApiProcess) -> None:
    await page.goto(console_api.url + "/console/jobs")
    await expect(page).to_have_url(re.compile(r"/console/login\?next=/console/jobs"))
    await page.get_by_label("API token").fill("not-the-token")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#token-error")).to_contain_text("not JOBQUEUE_API_TOKEN")

    await page.get_by_label("API token").fill(TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(console_api.url + "/console/jobs")
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()

    # asked once: every other page opens with the cookie alone
    for name in ("Overview", "Workers", "Schedules", "Scaling"):
        await page.get_by_role("link", name=name, exact=True).click()
        await expect(page.locator("nav a[aria-current=page]")).to_have_text(name)
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["jobqueue_console_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert TOKEN not in session["value"]

    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/console/login"))


async def test_failed_job_found_through_the_filters_and_retried(
    page: Page, console_api: ApiProcess, pg_dsn: str
) -> None:
    for queue in ("mail", "mail", "reports"):
        enqueue(console_api, queue_name=queue)
    job_id = enqueue(console_api, queue_name="mail")
    await sql(
        pg_dsn,
        "UPDATE jobs SET status = 'failed', attempts = 3, finished_at = now(),"
        " last_error = 'SMTP 550: mailbox unavailable' WHERE id = $1",
        job_id,
    )
    await log_in(page, console_api, "/console/jobs")

    await page.get_by_label("Status").select_option("failed")
    await page.get_by_label("Queue").fill("mail")
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.jobs tbody tr[data-job]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("SMTP 550")

    await rows.first.get_by_role("link", name=str(job_id)).click()
    await expect(page.locator("#last-error")).to_have_text("SMTP 550: mailbox unavailable")
    await page.get_by_role("button", name="Retry").click()
    await expect(page.get_by_role("heading", name=f"Retry job {job_id}?")).to_be_visible()
    await page.get_by_role("button", name="Yes, do it").click()

    await expect(page.get_by_role("status")).to_have_text("Job retried: it is pending again.")
    await expect(page.locator("#job-status")).to_have_text("pending")
    assert await sql(pg_dsn, "SELECT status::text FROM jobs WHERE id = $1", job_id) == "pending"


async def test_queue_paused_and_resumed(page: Page, console_api: ApiProcess, pg_dsn: str) -> None:
    enqueue(console_api, queue_name="mail")
    await log_in(page, console_api)
    row = page.locator('tr[data-queue="mail"]')
    await expect(row.locator(".state")).to_have_text("active")

    await row.get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("heading", name="Pause queue mail?")).to_be_visible()
    await page.get_by_role("button", name="Yes, do it").click()
    await expect(page.get_by_role("status")).to_have_text("Queue mail paused.")
    await expect(row.locator(".state")).to_have_text("paused")
    assert await sql(pg_dsn, "SELECT paused FROM queues WHERE name = 'mail'") is True

    await row.get_by_role("button", name="Resume").click()
    await page.get_by_role("button", name="Yes, do it").click()
    await expect(row.locator(".state")).to_have_text("active")
    assert await sql(pg_dsn, "SELECT paused FROM queues WHERE name = 'mail'") is False


async def test_scaling_page_shows_a_decision_the_controller_wrote(
    page: Page, console_api: ApiProcess, pg_dsn: str
) -> None:
    # the row as the controller writes it: one per change of replicas, with its reason
    await sql(
        pg_dsn,
        "INSERT INTO scaling_decisions"
        " (decided_at, namespace, deployment, from_replicas, to_replicas, reason, detail)"
        " VALUES (now() - interval '5 minutes', 'jobs', 'emails-worker', 0, 4, 'scale-up', $1)",
        json.dumps({"ready": 40, "running": 0, "desired": 4}),
    )
    await log_in(page, console_api, "/console/scaling")
    section = page.locator('section[data-deployment="jobs/emails-worker"]')
    await expect(section.get_by_role("heading")).to_contain_text("4 replicas")
    decision = section.locator("table.decisions tbody tr")
    await expect(decision).to_have_count(1)
    await expect(decision).to_contain_text("0 → 4")
    await expect(decision).to_contain_text("scale-up")
    await expect(decision).to_contain_text("ready=40")
    await expect(section.locator("svg.replicas circle")).to_have_count(1)


async def test_counts_refresh_without_a_reload(page: Page, console_api: ApiProcess) -> None:
    # the Content-Security-Policy must not block htmx, nor htmx fail in any other way
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    enqueue(console_api, queue_name="live")
    await log_in(page, console_api)
    ready = page.locator('tr[data-queue="live"] [data-count="ready"]')
    await expect(ready).to_have_text("1")
    await page.evaluate("window.stillTheSamePage = true")
    enqueue(console_api, queue_name="live")
    await expect(ready).to_have_text("2", timeout=60_000)
    assert await page.evaluate("window.stillTheSamePage === true")
    assert errors == []


async def test_a_running_jobs_progress_refreshes(
    page: Page, console_api: ApiProcess, pg_dsn: str
) -> None:
    job_id = enqueue(console_api, queue_name="slow")
    await log_in(page, console_api, f"/console/jobs/{job_id}")
    await expect(page.locator("#job-status")).to_have_text("pending")
    await sql(
        pg_dsn,
        "UPDATE jobs SET status = 'running', started_at = now(), progress = 0.4,"
        " progress_message = 'page 4 of 10' WHERE id = $1",
        job_id,
    )
    await expect(page.locator("#job-status")).to_have_text("running", timeout=60_000)
    await expect(page.locator("#job-progress")).to_contain_text("40 %", timeout=60_000)
    await expect(page.locator("#job-progress")).to_contain_text("page 4 of 10")
    await expect(page.locator("#job-status")).to_have_count(1)


async def test_bad_input_in_the_browser(page: Page, console_api: ApiProcess) -> None:
    await log_in(page, console_api, "/console/jobs")
    response = await page.goto(console_api.url + "/console/jobs/424242")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    response = await page.goto(console_api.url + "/console/jobs?status=bogus&before=x")
    assert response is not None and response.status == 422
    await expect(page.locator("#status-error")).to_be_visible()
    await expect(page.locator("label.invalid")).to_have_count(1)
    await expect(page.locator("#before-error")).to_be_visible()
