"""Scoped tokens (DESIGN.md, "Tokens") over HTTP against a real `jobqueue api`, and the API
closed by default: no token on a non-loopback address is one line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import free_port
from tests.integration.api_support import JOBS, SEED_JOB, api_process

ADMIN, READ, ENQUEUE = "admin-token-0123", "read-token-4567", "enqueue-token-89ab"
TOKENS = {
    "JOBQUEUE_API_TOKEN": ADMIN,
    "JOBQUEUE_API_READ_TOKEN": READ,
    "JOBQUEUE_API_ENQUEUE_TOKEN": ENQUEUE,
}
QUEUE = "/api/v1/queue"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(pg_dsn: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with api_process(pg_dsn, tmp_path / "api.log", **TOKENS) as running:
        yield running


def test_each_token_opens_only_its_scope(api) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=api.url) as client:
        # enqueue: create jobs and batches, and follow one job or batch
        made = client.post(JOBS, json=SEED_JOB, headers=bearer(ENQUEUE))
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]
        batch = client.post(f"{JOBS}/batch", json={"jobs": [SEED_JOB]}, headers=bearer(ENQUEUE))
        assert batch.status_code == 201
        assert client.get(f"{JOBS}/{job_id}", headers=bearer(ENQUEUE)).status_code == 200
        for method, path in (
            ("GET", JOBS),
            ("GET", f"{JOBS}/stats/overview"),
            ("GET", f"{QUEUE}/queues"),
            ("POST", f"{JOBS}/{job_id}/cancel"),
            ("POST", f"{QUEUE}/queues/default/pause"),
            ("POST", f"{QUEUE}/schedules"),
        ):
            refused = client.request(method, path, headers=bearer(ENQUEUE), json={})
            assert refused.status_code == 403, (method, path, refused.text)
            assert "JOBQUEUE_API_TOKEN" in refused.json()["detail"]

        # read: every GET, no write
        for path in (JOBS, f"{JOBS}/{job_id}", f"{JOBS}/stats/overview", f"{QUEUE}/queues",
                     f"{QUEUE}/workers", f"{QUEUE}/schedules"):  # fmt: skip
            assert client.get(path, headers=bearer(READ)).status_code == 200, path
        for method, path, body in (
            ("POST", JOBS, SEED_JOB),
            ("POST", f"{JOBS}/{job_id}/cancel", None),
            ("POST", f"{JOBS}/retry", {"all": True}),
            ("PATCH", f"{QUEUE}/queues/default", {"concurrency_limit": 1}),
        ):
            refused = client.request(method, path, headers=bearer(READ), json=body)
            assert refused.status_code == 403, (method, path, refused.text)

        # admin: everything
        assert client.post(f"{JOBS}/{job_id}/cancel", headers=bearer(ADMIN)).status_code == 200
        assert client.get(JOBS, headers=bearer(ADMIN)).status_code == 200
        # nothing else changed: the refused writes wrote nothing
        jobs = client.get(JOBS, headers=bearer(READ)).json()["jobs"]
        assert (
            len(jobs) == 2
            and client.get(f"{QUEUE}/queues", headers=bearer(READ)).json()["queues"][0]["paused"]
            is False
        )


def test_readyz_names_the_database_only_to_a_token(pg_dsn: str, tmp_path: Path) -> None:
    # a database that refuses the login: the API starts, and readyz says why
    port = free_port()
    unreachable = f"postgresql://secret_user@127.0.0.1:{port}/secret_db"
    with api_process(unreachable, tmp_path / "api.log", **TOKENS) as api:
        anonymous = httpx.get(f"{api.url}/readyz")
        assert anonymous.status_code == 503
        database = anonymous.json()["database"]
        # the kind of problem and the error's class; no message (hosts, users, addresses)
        assert database.startswith("unreachable: ") and database.count(":") == 1, database
        told = httpx.get(f"{api.url}/readyz", headers=bearer(READ)).json()["database"]
        assert told.startswith(database + ": ") and len(told) > len(database) + 10, told


def run_api(env: dict[str, str], seconds: float) -> subprocess.CompletedProcess[str]:
    """`jobqueue api` for at most `seconds`: what it printed, and its exit (None: still up)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "api"],
        env={**os.environ, "JOBQUEUE_API_PORT": str(free_port()), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, -1, out, err)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.internal"])
def test_no_token_on_a_network_address_is_refused(pg_dsn: str, host: str) -> None:
    done = run_api({"DB_URL": pg_dsn, "JOBQUEUE_API_HOST": host, "JOBQUEUE_API_TOKEN": ""}, 60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "JOBQUEUE_API_TOKEN" in lines[0] and "JOBQUEUE_API_INSECURE" in lines[0]


def test_the_insecure_setting_serves_open_and_says_so(pg_dsn: str) -> None:
    done = run_api(
        {
            "DB_URL": pg_dsn,
            "JOBQUEUE_API_HOST": "0.0.0.0",
            "JOBQUEUE_API_TOKEN": "",
            "JOBQUEUE_API_INSECURE": "true",
        },
        8,
    )
    assert done.returncode == -1, "it kept serving"
    assert "JOBQUEUE_API_INSECURE=true" in done.stderr and "open to anyone" in done.stderr


def test_one_token_for_two_scopes_is_refused(pg_dsn: str) -> None:
    done = run_api(
        {"DB_URL": pg_dsn, "JOBQUEUE_API_TOKEN": "same", "JOBQUEUE_API_READ_TOKEN": "same"}, 60
    )
    assert done.returncode == 2
    assert "JOBQUEUE_API_READ_TOKEN" in done.stderr
