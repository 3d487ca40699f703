"""A real `jobqueue api` process with a token, and Debian's headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.fixtures.browser import chromium, require_chromium
from tests.integration.api_support import ApiProcess, api_process

TOKEN = "browser-test-token"


@pytest.fixture
def console_api(pg_dsn: str, tmp_path: Path) -> Iterator[ApiProcess]:
    with api_process(pg_dsn, tmp_path / "api.log", JOBQUEUE_API_TOKEN=TOKEN) as api:
        yield api


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium(require_chromium()) as found:
        yield found


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)  # generous: the machine is shared
    page = await context.new_page()
    try:
        yield page
    finally:
        await context.close()
