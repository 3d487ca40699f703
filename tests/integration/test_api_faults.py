"""A real `jobqueue api` process while its PostgreSQL restarts: POSTs get 201/200, or 503 with
Retry-After and nothing else, and a client that retries with the same idempotency key ends
up with exactly one job per key."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import PrivateServer
from tests.integration.api_support import JOBS, SEED_JOB, api_process

CLIENTS = 4
KEYS_PER_CLIENT = 150  # bounded: the run ends after this many jobs, restart or not
GIVE_UP_SECONDS = 120.0


def _client(base_url: str, prefix: str, statuses: Counter[int], missing_retry_after: list[int]):
    def run() -> None:
        deadline = time.monotonic() + GIVE_UP_SECONDS
        with httpx.Client(base_url=base_url, timeout=30) as client:
            for n in range(KEYS_PER_CLIENT):
                body = {**SEED_JOB, "idempotency_key": f"{prefix}-{n}"}
                while time.monotonic() < deadline:
                    try:
                        response = client.post(JOBS, json=body)
                    except httpx.TransportError:
                        statuses[-1] += 1  # the API itself stays up; counted, then asserted
                        time.sleep(0.1)
                        continue
                    statuses[response.status_code] += 1
                    if response.status_code != 503:
                        break
                    if "retry-after" not in response.headers:
                        missing_retry_after.append(n)
                    time.sleep(0.05)  # a real client would honour Retry-After; keep it short

    return run


def _wait_for_traffic(statuses: Counter[int], threads: list[threading.Thread]) -> None:
    while sum(statuses.values()) < 50 and any(t.is_alive() for t in threads):
        time.sleep(0.05)


async def test_posts_during_a_postgres_restart_get_503_and_one_job_per_key(
    private_pg_server: PrivateServer, tmp_path: Path
) -> None:
    dsn = await private_pg_server.create_database()
    statuses: Counter[int] = Counter()
    missing_retry_after: list[int] = []
    with api_process(dsn, tmp_path / "api.log", JOBQUEUE_API_POOL_MIN="1") as api:
        threads = [
            threading.Thread(target=_client(api.url, f"c{i}", statuses, missing_retry_after))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        # restart while the clients are busy: wait for some traffic first
        await asyncio.to_thread(_wait_for_traffic, statuses, threads)
        private_pg_server.stop("fast")
        await asyncio.sleep(1.0)  # requests arrive while the server is down
        private_pg_server.start()
        for thread in threads:
            thread.join(timeout=GIVE_UP_SECONDS + 30)
        assert not any(t.is_alive() for t in threads)
        log = api.log.read_text()

    codes = set(statuses)
    errors = [line for line in log.splitlines() if "Error" in line and "WARNING" not in line]
    assert codes <= {200, 201, 503}, (statuses, errors[:30])
    assert statuses[503] > 0, statuses  # the restart was seen, so the test proves something
    assert not missing_retry_after
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT idempotency_key, count(*) AS n FROM jobs GROUP BY 1")
    finally:
        await conn.close()
    per_key = {row["idempotency_key"]: row["n"] for row in rows}
    expected = {f"c{i}-{n}" for i in range(CLIENTS) for n in range(KEYS_PER_CLIENT)}
    assert set(per_key) == expected
    assert set(per_key.values()) == {1}
