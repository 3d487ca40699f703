"""Console sessions against a real `jobqueue api`: they expire, a logout ends them for good,
a read-only session sees pages but acts on nothing, logins are rate-limited, and cookies can
be forced Secure behind a TLS proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.integration.api_support import ApiProcess, api_process
from tests.integration.console_support import CONSOLE, csrf_of

ADMIN, READ = "console-admin-token", "console-read-token"
SESSION = "jobqueue_console_session"


@contextmanager
def console_api(pg_dsn: str, tmp_path: Path, **env: str) -> Iterator[ApiProcess]:
    with api_process(
        pg_dsn, tmp_path / "api.log", JOBQUEUE_API_TOKEN=ADMIN, JOBQUEUE_API_READ_TOKEN=READ, **env
    ) as api:
        yield api


def log_in(client: httpx.Client, token: str) -> httpx.Response:
    page = client.get(f"{CONSOLE}/login")
    return client.post(
        f"{CONSOLE}/login", data={"csrf_token": csrf_of(page), "token": token, "next": CONSOLE}
    )


def signed_in(client: httpx.Client) -> bool:
    answer = client.get(f"{CONSOLE}/jobs")
    if answer.status_code == 303:
        assert "/console/login" in answer.headers["location"]
        return False
    assert answer.status_code == 200, answer.text
    return True


def test_a_session_expires(pg_dsn: str, tmp_path: Path) -> None:
    with (
        console_api(pg_dsn, tmp_path, JOBQUEUE_CONSOLE_SESSION_SECONDS="2") as api,
        httpx.Client(base_url=api.url) as client,
    ):
        done = log_in(client, ADMIN)
        assert done.status_code == 303
        cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(SESSION))
        assert "Max-Age=2" in cookie
        assert signed_in(client)
        time.sleep(2.5)
        # the browser would drop it; a copied cookie is refused by the server all the same
        client.cookies.set(SESSION, done.cookies[SESSION], path=CONSOLE)
        assert not signed_in(client)


def test_logout_ends_the_session_everywhere(pg_dsn: str, tmp_path: Path) -> None:
    with console_api(pg_dsn, tmp_path) as api, httpx.Client(base_url=api.url) as client:
        log_in(client, ADMIN)
        stolen = client.cookies[SESSION]
        page = client.get(CONSOLE)
        out = client.post(f"{CONSOLE}/logout", data={"csrf_token": csrf_of(page)})
        assert out.status_code == 303
        with httpx.Client(base_url=api.url, cookies={SESSION: stolen}) as thief:
            assert not signed_in(thief), "a logged-out session still opened the console"


def test_a_read_only_session_sees_but_does_not_act(pg_dsn: str, tmp_path: Path) -> None:
    with console_api(pg_dsn, tmp_path) as api, httpx.Client(base_url=api.url) as client:
        job = httpx.post(
            f"{api.url}/api/v1/queue/jobs",
            json={"job_type": "noop", "queue_name": "reports"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()["id"]
        assert log_in(client, READ).status_code == 303
        overview = client.get(CONSOLE)
        assert overview.status_code == 200 and "read-only" in overview.text
        assert 'action="/console/queues/pause"' not in overview.text
        job_page = client.get(f"{CONSOLE}/jobs/{job}")
        assert job_page.status_code == 200 and "/cancel" not in job_page.text
        token = csrf_of(job_page)
        for action in (f"/jobs/{job}/cancel", "/queues/reports/pause", "/jobs/retry"):
            refused = client.post(
                f"{CONSOLE}{action}", data={"csrf_token": token, "confirmed": "yes"}
            )
            assert refused.status_code == 403, (action, refused.text)
            assert "read-only" in refused.text
        status = httpx.get(
            f"{api.url}/api/v1/queue/jobs/{job}", headers={"Authorization": f"Bearer {READ}"}
        ).json()["status"]
        assert status == "pending"


def test_logins_are_rate_limited(pg_dsn: str, tmp_path: Path) -> None:
    with (
        console_api(pg_dsn, tmp_path, JOBQUEUE_CONSOLE_LOGIN_PER_MINUTE="3") as api,
        httpx.Client(base_url=api.url) as client,
    ):
        for _ in range(3):
            assert log_in(client, "guess").status_code == 401
        held = log_in(client, ADMIN)  # even the right token waits now
        assert held.status_code == 429
        assert 1 <= int(held.headers["retry-after"]) <= 60
        assert not signed_in(client)


def test_cookies_can_be_forced_secure(pg_dsn: str, tmp_path: Path) -> None:
    """Behind a proxy that ends TLS, the API sees plain HTTP; the setting keeps Secure."""
    with (
        console_api(pg_dsn, tmp_path, JOBQUEUE_CONSOLE_SECURE_COOKIES="true") as api,
        httpx.Client(base_url=api.url) as client,
    ):
        first = client.get(f"{CONSOLE}/login")
        nonce = next(c for c in first.headers.get_list("set-cookie") if "nonce" in c)
        assert "Secure" in nonce
        done = client.post(
            f"{CONSOLE}/login",
            data={"csrf_token": csrf_of(first), "token": ADMIN, "next": CONSOLE},
            # the client keeps Secure cookies for https only; the test sends the nonce itself
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in first.cookies.items())},
        )
        session = next(c for c in done.headers.get_list("set-cookie") if c.startswith(SESSION))
        assert "Secure" in session and "HttpOnly" in session
