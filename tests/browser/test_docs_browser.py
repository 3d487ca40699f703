"""Finding 3: /docs renders the OpenAPI 3.1 document in a real browser (Debian's headless
Chromium against a real `jobqueue api` process), from local assets only, and it is
interactive: authorize with the token, try POST /jobs with its seed example, see the 201."""

from __future__ import annotations

from playwright.async_api import Page, Request, expect

from tests.browser.conftest import TOKEN
from tests.integration.api_support import JOBS, ApiProcess


async def test_docs_render_every_operation_from_local_assets_and_try_one(
    page: Page, console_api: ApiProcess
) -> None:
    requested: list[str] = []

    def note(request: Request) -> None:
        requested.append(request.url)

    page.on("request", note)
    await page.goto(console_api.url + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Job-Queue")
    await expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    paths = page.locator(".opblock-summary-path")
    await expect(paths.first).to_be_visible()
    shown = set(await paths.all_inner_texts())
    for path in (JOBS, f"{JOBS}/{{job_id}}", f"{JOBS}/batch", "/api/v1/queue/queues"):
        assert any(text.replace("\u200b", "") == path for text in shown), (path, shown)
    assert all(url.startswith(console_api.url) for url in requested), requested  # no CDN

    # interactive: the token once, then POST /jobs with the example the docs fill in
    await page.get_by_role("button", name="Authorize").first.click()
    await page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(
        TOKEN
    )
    await page.locator(".modal-ux button.authorize").click()
    await page.locator(".modal-ux button.btn-done").click()
    post = page.locator(".opblock-post").filter(
        has=page.locator(f".opblock-summary-path[data-path='{JOBS}']")
    )
    await expect(post).to_have_count(1)
    await post.first.locator(".opblock-summary").click()
    await post.first.get_by_role("button", name="Try it out").click()
    await post.first.get_by_role("button", name="Execute").click()
    await expect(
        post.first.locator(".live-responses-table tbody .response-col_status").first
    ).to_have_text("201")
