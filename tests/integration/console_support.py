"""Helpers for console tests: a logged-in client's CSRF token, read off a rendered form."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
CONSOLE = "/console"


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


async def login(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get(f"{CONSOLE}/login")
    return await client.post(
        f"{CONSOLE}/login",
        data={"csrf_token": csrf_of(page), "token": token, "next": f"{CONSOLE}/jobs"},
    )


async def confirmed_post(
    client: httpx.AsyncClient, page_url: str, action: str, **fields: str
) -> httpx.Response:
    """An action as a person does it: the button on `page_url`, then "Yes" on the question."""
    token = csrf_of(await client.get(page_url))
    question = await client.post(action, data={"csrf_token": token, **fields})
    assert question.status_code == 200, question.text
    assert 'name="confirmed" value="yes"' in question.text
    return await client.post(
        action, data={"csrf_token": csrf_of(question), "confirmed": "yes", **fields}
    )
