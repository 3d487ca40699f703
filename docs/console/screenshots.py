"""Takes a screenshot of each console page into docs/console/ (README shows two of them).

    make screenshots        (or: .venv/bin/python docs/console/screenshots.py [--out DIR])

It starts a throwaway PostgreSQL, fills it with docs/console/demo.sql, runs a real
`jobqueue api` with a token, and drives Debian's headless Chromium (tools/install-browser.sh;
JOBQUEUE_CHROMIUM names another binary).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from tests.fixtures import postgres as pg  # noqa: E402
from tests.fixtures.browser import chromium, chromium_path  # noqa: E402
from tests.integration.api_support import api_process  # noqa: E402

TOKEN = "demo-token"
DEMO_SQL = (HERE / "demo.sql").read_text()
# file name: (path, what to wait for)
PAGES = {
    "overview.png": ("/console", 'tr[data-queue="emails"]'),
    "jobs.png": ("/console/jobs?status=failed&queue=emails", "table.jobs"),
    "job.png": (None, "#payload"),  # the newest failed job, found at run time
    "workers.png": ("/console/workers", "table.workers"),
    "schedules.png": ("/console/schedules", "table.schedules"),
    "scaling.png": ("/console/scaling", "svg.replicas"),
}


async def seed(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(DEMO_SQL)
        return int(await conn.fetchval("SELECT max(id) FROM jobs WHERE status = 'failed'"))
    finally:
        await conn.close()


async def shoot(base_url: str, out: Path, failed_job: int) -> list[Path]:
    browser_path = chromium_path()
    if browser_path is None:
        raise SystemExit("Chromium is missing: run `bash tools/install-browser.sh`")
    taken = []
    async with chromium(browser_path) as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        await page.goto(base_url + "/console")
        await page.get_by_label("API token").fill("not-the-token")
        await page.get_by_role("button", name="Log in").click()
        await page.locator("#token-error").wait_for()
        await page.screenshot(path=out / "login.png")
        taken.append(out / "login.png")
        await page.get_by_label("API token").fill(TOKEN)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(base_url + "/console")
        for name, (path, ready) in PAGES.items():
            await page.goto(base_url + (path or f"/console/jobs/{failed_job}"))
            await page.locator(ready).first.wait_for()
            await page.screenshot(path=out / name, full_page=name != "overview.png")
            taken.append(out / name)
        await context.close()
    return taken


async def main(out: Path) -> None:
    server = pg.PostgresServer()
    server.init()
    server.start()
    try:
        dsn = await pg.create_migrated_database(server, "console_demo")
        failed_job = await seed(dsn)
        with (
            tempfile.TemporaryDirectory() as logs,
            api_process(dsn, Path(logs) / "api.log", JOBQUEUE_API_TOKEN=TOKEN) as api,
        ):
            for path in await shoot(api.url, out, failed_job):
                print(path)
    finally:
        server.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNG files")
    folder = parser.parse_args().out
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(folder))
