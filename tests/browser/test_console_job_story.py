"""Finding 16, in Debian's headless Chromium against a real `jobqueue api` and a real worker: a
failed job's page shows each attempt's error with its traceback (newest first), the handler's
log lines, the worker by name as a link, and how long the job waited and ran; internal columns
stay hidden. The overview has a labelled throughput chart and totals by job type."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import TOKEN
from tests.browser.test_console_browser import log_in
from tests.fixtures.processes import stop_process
from tests.integration.api_support import JOBS, ApiProcess, api_process
from tests.integration.firsthour_support import handler_env
from tests.integration.queue_support import start_worker_process

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def stack(pg_dsn: str, tmp_path: Path) -> Iterator[ApiProcess]:
    """The API (knowing the first-hour handlers) and one worker named fh-worker."""
    env = handler_env(JOBQUEUE_API_TOKEN=TOKEN)
    worker = start_worker_process(
        pg_dsn, tmp_path / "worker.log", JOBQUEUE_WORKER_NAME="fh-worker", **handler_env()
    )
    try:
        with api_process(pg_dsn, tmp_path / "api.log", **env) as api:
            yield api
    finally:
        stop_process(worker)


def _failed_job(api: ApiProcess) -> int:
    created = httpx.post(
        api.url + JOBS, json={"job_type": "fh_fail", "max_tries": 3}, headers=AUTH, timeout=10
    )
    assert created.status_code == 201, created.text
    job_id = int(created.json()["id"])
    done = httpx.get(
        f"{api.url}{JOBS}/{job_id}", params={"wait_seconds": 30}, headers=AUTH, timeout=40
    )
    assert done.json()["status"] == "failed"
    return job_id


async def test_a_failed_jobs_page_tells_its_story(page: Page, stack: ApiProcess) -> None:
    job_id = await asyncio.to_thread(_failed_job, stack)

    await log_in(page, stack, f"/console/jobs/{job_id}")
    errors = page.locator("#errors details.attempt-error")
    await expect(errors).to_have_count(3)
    await expect(errors.locator("summary .badge")).to_have_text(
        ["attempt 3", "attempt 2", "attempt 1"]
    )
    newest = errors.first
    await expect(newest).to_have_attribute("open", "")
    await expect(newest.locator("pre.traceback")).to_contain_text('return payload["missing_key"]')
    await expect(newest.locator("pre.traceback")).to_contain_text("KeyError: 'missing_key'")
    await expect(errors.nth(2).locator("pre.traceback")).not_to_be_visible()  # folded
    await errors.nth(2).locator("summary").click()
    await expect(errors.nth(2).locator("pre.traceback")).to_be_visible()

    logs = page.locator("#logs table.logs tbody tr")
    await expect(logs).to_have_count(3)
    await expect(logs.nth(1)).to_contain_text("looking up the key, attempt 2")

    worker = page.locator("#worker a")
    await expect(worker).to_have_text("fh-worker")
    await expect(page.locator("#ran")).to_have_text(re.compile(r"\d+(\.\d)? (ms|s)"))
    await expect(page.locator("#waited")).to_have_text(re.compile(r"\d"))
    for internal in ("has_dependents", "has_waiters", "dependencies_left"):
        await expect(page.get_by_text(internal)).to_have_count(0)

    await worker.click()
    await expect(page).to_have_url(re.compile(r"/console/workers#worker-"))
    await expect(page.locator("tr[id^=worker-]").first).to_contain_text("fh-worker")

    await page.goto(stack.url + "/console")
    chart = page.locator("#throughput svg.throughput")
    await expect(chart.locator("text.x")).to_have_text(["60 min ago", "30 min ago", "now"])
    await expect(chart.locator("rect")).not_to_have_count(0)
    await expect(page.locator("#throughput h2")).to_have_text(
        "Jobs finished per minute, last hour, all queues"
    )
    row = page.locator("#job-types tr[data-type=fh_fail]")
    await expect(row.locator("td")).to_have_count(7)
    await expect(row.locator("td").nth(4)).to_have_text("1")  # failed in the last hour
