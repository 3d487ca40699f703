"""Requests cannot exhaust a real `jobqueue api` process (docs/security.md): a body is refused
on its headers (the token first, then its length) before any of it is read, and the peak
memory of the process shows it. Cross-site writes and foreign Host names are refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.api_support import JOBS, api_process
from tests.integration.security_support import MiB, peak_rss, raw_request, reset_peak

TOKEN = "admin-token-for-the-test"
SCHEDULES = "/api/v1/queue/schedules"
PAUSE = "/api/v1/queue/queues/default/pause"
# What parsing the finding's 40 MB body cost main: 1.14 GB. Here it must cost nearly nothing.
HUGE = 40 * MiB
ALLOWED_GROWTH = 24 * MiB


@pytest.fixture
def api(pg_dsn: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with api_process(pg_dsn, tmp_path / "api.log", JOBQUEUE_API_TOKEN=TOKEN) as running:
        yield running


@pytest.mark.parametrize(
    ("headers", "status", "chunked"),
    [
        ({}, 401, False),  # no token: refused on the headers alone
        ({"Authorization": "Bearer wrong"}, 401, False),
        ({"Authorization": f"Bearer {TOKEN}"}, 413, False),  # Content-Length over the limit
        ({"Authorization": f"Bearer {TOKEN}"}, 413, True),  # no length: counted as it comes
    ],
)
def test_a_huge_body_costs_no_memory(api, headers: dict[str, str], status: int, chunked: bool):  # type: ignore[no-untyped-def]
    pid = api.proc.pid
    reset_peak(pid)
    before = peak_rss(pid)
    answer = raw_request(
        api.url,
        "POST",
        SCHEDULES,
        {"Content-Type": "application/json", **headers},
        body_bytes=HUGE,
        chunked=chunked,
    )
    grown = peak_rss(pid) - before
    assert grown < ALLOWED_GROWTH, f"the API's peak memory grew by {grown / MiB:.0f} MiB"
    assert answer.status == status, answer.body
    if status == 413:
        assert b"JOBQUEUE_API_MAX_BODY_BYTES" in answer.body
        assert b"65536 bytes" in answer.body
    # the process is fine, and nothing was created
    ok = httpx.get(f"{api.url}{SCHEDULES}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["schedules"] == []


@pytest.mark.parametrize(
    "path", [SCHEDULES, "/api/v1/queue/jobs/retry", "/api/v1/queue/jobs/cancel", PAUSE]
)
def test_every_route_has_a_body_limit(api, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = raw_request(
        api.url, "POST", path, {"Authorization": f"Bearer {TOKEN}"}, body_bytes=70 * 1024
    )
    assert answer.status == 413, (path, answer.body)
    assert b"JOBQUEUE_API_MAX_BODY_BYTES" in answer.body
    patch = raw_request(
        api.url,
        "PATCH",
        "/api/v1/queue/queues/default",
        {"Authorization": f"Bearer {TOKEN}"},
        body_bytes=70 * 1024,
    )
    assert patch.status == 413


def test_the_batch_limit_is_its_own_setting(api) -> None:  # type: ignore[no-untyped-def]
    answer = raw_request(
        api.url,
        "POST",
        f"{JOBS}/batch",
        {"Authorization": f"Bearer {TOKEN}"},
        body_bytes=9 * MiB,
    )
    assert answer.status == 413
    assert b"JOBQUEUE_API_MAX_BATCH_BYTES" in answer.body


def test_cross_site_writes_are_refused(pg_dsn: str, tmp_path: Path) -> None:
    """With no token (a loopback API), a foreign page's form post must not pause a queue."""
    with api_process(pg_dsn, tmp_path / "api.log") as api, httpx.Client(base_url=api.url) as c:
        own = api.url.removeprefix("http://")
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": f"http://{own}", "Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},  # another port of the same host
            {"Origin": "http://127.0.0.1:1"},
        ):
            refused = c.post(PAUSE, headers={"Content-Type": "text/plain", **headers})
            assert refused.status_code == 403, (headers, refused.text)
            assert "JOBQUEUE_API_ALLOWED_ORIGINS" in refused.json()["detail"]
        assert c.get("/api/v1/queue/queues").json()["queues"] == [], "nothing was paused"
        # the same page's own writes, and clients that are not browsers, still work
        assert c.post(PAUSE, headers={"Origin": f"http://{own}"}).status_code == 200
        assert c.post("/api/v1/queue/queues/default/resume").status_code == 200
        # reads are not writes
        assert c.get(JOBS, headers={"Origin": "http://evil.example"}).status_code == 200


def test_an_allowed_origin_may_write(pg_dsn: str, tmp_path: Path) -> None:
    with api_process(
        pg_dsn, tmp_path / "api.log", JOBQUEUE_API_ALLOWED_ORIGINS="https://ops.example"
    ) as api:
        answer = httpx.post(f"{api.url}{PAUSE}", headers={"Origin": "https://ops.example"})
    assert answer.status_code == 200


def test_a_loopback_api_answers_only_loopback_names(pg_dsn: str, tmp_path: Path) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 reaches the
    port, but its requests carry Host: evil.example."""
    with api_process(pg_dsn, tmp_path / "api.log") as api:
        port = api.url.rsplit(":", 1)[1]
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.2.nip.example"):
            answer = httpx.get(f"{api.url}{JOBS}", headers={"Host": host})
            assert answer.status_code == 400, host
            assert "JOBQUEUE_API_ALLOWED_HOSTS" in answer.json()["detail"]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", "localhost"):
            assert httpx.get(f"{api.url}{JOBS}", headers={"Host": host}).status_code == 200, host
