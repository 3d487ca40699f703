"""Probes, metrics and the published schema."""

from __future__ import annotations

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.processes import free_port
from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings
from worker.db.migrate import expected_version


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_healthz_and_readyz_on_a_migrated_database(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "database": "ok",
        "schema_version": expected_version(),
        "expected_schema_version": expected_version(),
    }


async def test_readyz_is_503_until_the_schema_is_migrated(pg_dsn_empty: str) -> None:
    async with api_client(api_settings(pg_dsn_empty)) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["schema_version"] == 0
    assert "jobqueue migrate" in ready.json()["database"]


async def test_readyz_stays_ready_when_a_newer_build_has_migrated(pg_dsn: str) -> None:
    """A pre-upgrade migration must not take the old API pods out of service."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO jobqueue_schema_version (version, name) VALUES ($1, 'from_a_newer_build')",
            expected_version() + 1,
        )
    finally:
        await conn.close()
    async with api_client(api_settings(pg_dsn)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["schema_version"] == expected_version() + 1
    assert "newer" in ready.json()["database"]


async def test_without_a_database_the_api_starts_and_answers_503() -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    async with api_client(api_settings(dsn)) as client:
        assert (await client.get("/healthz")).status_code == 200
        # liveness must not depend on the database
        assert (await client.get("/livez")).json() == {"status": "ok"}
        assert (await client.post("/livez")).status_code == 405  # bad input: wrong method
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"].startswith("unreachable")
        created = await client.post(JOBS, json=SEED_JOB)
        assert created.status_code == 503
        assert created.headers["retry-after"] == "5"
        assert (await client.get(f"{JOBS}/stats/overview")).status_code == 503


async def test_metrics_count_requests_latency_and_enqueued_jobs(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        await client.post(JOBS, json=SEED_JOB)
        await client.post(JOBS, json={**SEED_JOB, "idempotency_key": "k"})
        await client.post(JOBS, json={**SEED_JOB, "idempotency_key": "k"})
        await client.post(f"{JOBS}/batch", json={"jobs": [{"job_type": "noop", "queue_name": "b"}]})
        await client.get(f"{JOBS}/77")
        await client.get("/no/such/path")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text

    requests = samples(text, "jobqueue_api_requests_total")
    route = "/api/v1/queue/jobs"
    assert requests[(("method", "POST"), ("route", route), ("status", "201"))] == 2
    assert requests[(("method", "POST"), ("route", route), ("status", "200"))] == 1
    assert requests[(("method", "GET"), ("route", f"{route}/{{job_id}}"), ("status", "404"))] == 1
    assert requests[(("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] == 1

    latency = samples(text, "jobqueue_api_request_duration_seconds_count")
    assert latency[(("method", "POST"), ("route", route))] == 3

    enqueued = samples(text, "jobqueue_api_jobs_enqueued_total")
    assert enqueued == {(("queue_name", "default"),): 2, (("queue_name", "b"),): 1}
    duplicates = samples(text, "jobqueue_api_jobs_duplicate_total")
    assert duplicates == {(("queue_name", "default"),): 1}


async def test_docs_and_openapi_carry_the_seed_examples(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        docs = await client.get("/docs")
        script = await client.get("/docs-assets/swagger-ui-bundle.js")
        schema = (await client.get("/openapi.json")).json()
    assert script.status_code == 200 and len(script.content) > 100_000
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert "https://" not in docs.text  # every asset is served locally, for offline clusters
    create = schema["paths"][JOBS]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert examples["seed"]["value"] == SEED_JOB
    assert set(create["responses"]) >= {"200", "201", "401", "413", "422"}
    assert f"{JOBS}/stats/overview" in schema["paths"]
    for path in ("/healthz", "/readyz", "/metrics", f"{JOBS}/batch", "/api/v1/queue/workers"):
        assert path in schema["paths"], path
