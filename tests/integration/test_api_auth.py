"""Bearer auth: on with JOBQUEUE_API_TOKEN, every /api route; probes only when asked."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings

TOKEN = "s3cret-token"
API_CALLS = [
    ("POST", JOBS, SEED_JOB),
    ("POST", f"{JOBS}/batch", {"jobs": [SEED_JOB]}),
    ("GET", JOBS, None),
    ("GET", f"{JOBS}/1", None),
    ("POST", f"{JOBS}/1/cancel", None),
    ("POST", f"{JOBS}/1/retry", None),
    ("GET", f"{JOBS}/stats/overview", None),
    ("GET", "/api/v1/queue/workers", None),
    ("GET", "/api/v1/queue/queues", None),
]
PROBES = ["/livez", "/healthz", "/readyz", "/metrics"]


async def call(client: httpx.AsyncClient, method: str, path: str, body: object) -> httpx.Response:
    return await client.request(method, path, json=body)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        b"Bearer wrong",
        b"Basic " + TOKEN.encode(),
        b"Bearer x" + TOKEN.encode(),
        b"Bearer",
        b"Bearer \xe9\xe8",
    ],
)
async def test_api_routes_need_the_token(pg_dsn: str, authorization: bytes | None) -> None:
    headers = {b"Authorization": authorization} if authorization else None
    async with api_client(api_settings(pg_dsn, api_token=TOKEN), headers=headers) as client:
        for method, path, body in API_CALLS:
            response = await call(client, method, path, body)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
        for probe in PROBES:
            assert (await client.get(probe)).status_code == 200, probe
        # nothing was enqueued by the refused requests
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        listed = await client.get(JOBS, headers=authorized)
        assert listed.json()["jobs"] == []


async def test_the_right_token_opens_every_route(pg_dsn: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with api_client(api_settings(pg_dsn, api_token=TOKEN), headers=headers) as client:
        statuses = [(await call(client, m, p, b)).status_code for m, p, b in API_CALLS]
    # job 1 (enqueued first) is shown, cancelled, then retried
    assert statuses == [201, 201, 200, 200, 200, 200, 200, 200, 200]


async def test_probes_can_be_protected_too(pg_dsn: str) -> None:
    settings = api_settings(pg_dsn, api_token=TOKEN, api_protect_probes=True)
    async with api_client(settings) as client:
        for probe in PROBES:
            assert (await client.get(probe)).status_code == 401, probe
        for probe in PROBES:
            response = await client.get(probe, headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status_code == 200, probe


@pytest.mark.parametrize("token", [None, ""])
async def test_without_a_token_everything_is_open(pg_dsn: str, token: str | None) -> None:
    async with api_client(api_settings(pg_dsn, api_token=token)) as client:
        for method, path, body in API_CALLS[:3]:
            response = await call(client, method, path, body)
            assert response.status_code in (200, 201), (path, response.text)
        schema = (await client.get("/openapi.json")).json()
        assert "securitySchemes" not in schema.get("components", {})


async def test_the_schema_declares_bearer_auth_when_it_is_on(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn, api_token=TOKEN)) as client:
        schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    create = schema["paths"][JOBS]["post"]
    assert create["security"] == [{"HTTPBearer": []}]
