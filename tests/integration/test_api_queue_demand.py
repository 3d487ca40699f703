"""The queues' demand on the API's /metrics, as a Prometheus scrape (or KEDA's prometheus
scaler) reads it from a real `jobqueue api`: per queue, zero-filled, paused-aware, and absent
(not zero) when the database cannot be read."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.fixtures.processes import free_port
from tests.integration.api_support import api_client, api_process, api_settings
from tests.integration.test_api_probes import samples
from worker.db.claims import claim_jobs
from worker.db.jobs import NewJob, enqueue_many

DEMAND = "jobqueue_queue_demand_jobs"


def demand(text: str, name: str = DEMAND) -> dict[str, float]:
    return {dict(labels)["queue"]: value for labels, value in samples(text, name).items()}


async def test_demand_per_queue_is_zero_filled_and_paused_aware(
    pg_dsn: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await enqueue_many(
            conn,
            [NewJob("noop", queue_name="emails") for _ in range(4)]
            + [NewJob("noop", queue_name="reports") for _ in range(2)]
            + [NewJob("noop", queue_name="later", delay_seconds=3600)],
        )
        await claim_jobs(conn, ["emails"], 1, uuid.uuid4(), 60)
        await conn.execute("INSERT INTO queues (name, paused) VALUES ('reports', true)")
        with api_process(pg_dsn, tmp_path / "api.log") as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
                first = (await http.get("/metrics")).text
                # the queues drain: their series stay, at zero
                await conn.execute("DELETE FROM jobs")
                await conn.execute("DELETE FROM queues")
                drained = (await http.get("/metrics")).text
    finally:
        await conn.close()
    # emails: 3 ready + 1 running; reports paused (its ready jobs are no demand); later not due
    assert demand(first) == {"emails": 4, "reports": 0, "later": 0}
    assert demand(first, "jobqueue_queue_running_jobs") == {"emails": 1, "reports": 0, "later": 0}
    assert demand(drained) == {"emails": 0, "reports": 0, "later": 0}


async def test_an_unreadable_database_reports_no_demand_rather_than_zero() -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    async with api_client(api_settings(dsn)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200  # the API's own metrics still answer
    assert demand(response.text) == {}
