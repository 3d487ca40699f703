"""A read-only console session in a real browser: logged in with JOBQUEUE_API_READ_TOKEN, it
sees every page and no button that would act; an admin session sees them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import TOKEN
from tests.integration.api_support import JOBS, ApiProcess, api_process

READ_TOKEN = "browser-read-only-token"


@pytest.fixture
def scoped_api(pg_dsn: str, tmp_path: Path) -> Iterator[ApiProcess]:
    with api_process(
        pg_dsn,
        tmp_path / "api.log",
        JOBQUEUE_API_TOKEN=TOKEN,
        JOBQUEUE_API_READ_TOKEN=READ_TOKEN,
    ) as api:
        yield api


async def log_in(page: Page, api: ApiProcess, token: str) -> None:
    await page.goto(api.url + "/console")
    await expect(page).to_have_url(re.compile(r"/console/login"))
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(api.url + "/console")


def failed_job(api: ApiProcess) -> int:
    """A job to act on: enqueued, then cancelled, so its page would offer Retry; and a pending
    one, which puts its queue on the overview."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    made = [
        httpx.post(
            api.url + JOBS,
            json={"job_type": "noop", "queue_name": "mail", "delay_seconds": 3600},
            headers=auth,
            timeout=10,
        )
        for _ in range(2)
    ]
    job_id = int(made[0].json()["id"])
    httpx.post(f"{api.url}{JOBS}/{job_id}/cancel", headers=auth, timeout=10)
    return job_id


async def test_a_read_only_session_shows_no_action(page: Page, scoped_api: ApiProcess) -> None:
    job_id = failed_job(scoped_api)
    await log_in(page, scoped_api, READ_TOKEN)
    await expect(page.locator("header .badge.read-only")).to_have_text("read-only")
    await expect(page.locator("tr[data-queue=mail]")).to_be_visible()
    # no pause, no pause-by-name, on the overview
    await expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    await expect(page.get_by_label("Pause a queue by name")).to_have_count(0)
    # the job's page shows the job, and no Retry
    await page.goto(f"{scoped_api.url}/console/jobs/{job_id}")
    await expect(page.get_by_role("heading", name=f"Job {job_id}")).to_be_visible()
    await expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    # the failed list offers no bulk retry
    await page.goto(f"{scoped_api.url}/console/jobs?status=cancelled")
    await expect(page.locator(f"tr[data-job='{job_id}']")).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("Retry all"))).to_have_count(0)
    # logging out still works
    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/console/login"))


async def test_an_admin_session_shows_the_actions(page: Page, scoped_api: ApiProcess) -> None:
    job_id = failed_job(scoped_api)
    await log_in(page, scoped_api, TOKEN)
    await expect(page.locator("header .badge.read-only")).to_have_count(0)
    await expect(
        page.locator("tr[data-queue=mail]").get_by_role("button", name="Pause")
    ).to_be_visible()
    await page.goto(f"{scoped_api.url}/console/jobs/{job_id}")
    await expect(page.get_by_role("button", name="Retry")).to_be_visible()
