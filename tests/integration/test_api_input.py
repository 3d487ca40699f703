"""Bad input gets a 4xx that names the field, never a 5xx; nothing bad reaches the table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings

PAYLOAD_CAP = 1000


@pytest.fixture
async def client(pg_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(pg_dsn, api_max_payload_bytes=PAYLOAD_CAP, api_max_batch_bytes=20_000)
    async with api_client(settings) as c:
        yield c


def first_error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["detail"][0]
    return error


async def post_raw(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await client.post(path, content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"payload": {}}, ["body", "job_type"]),
        ({"job_type": ""}, ["body", "job_type"]),
        ({"job_type": "noop", "max_tries": 0}, ["body", "max_tries"]),
        ({"job_type": "noop", "max_tries": "three"}, ["body", "max_tries"]),
        ({"job_type": "noop", "payload": [1, 2]}, ["body", "payload"]),
        ({"job_type": "noop", "priority": 2**40}, ["body", "priority"]),
        ({"job_type": "noop", "delay_seconds": -1}, ["body", "delay_seconds"]),
        ({"job_type": "noop", "timeout_seconds": 0}, ["body", "timeout_seconds"]),
        ({"job_type": "noop", "run_at": "tomorrow"}, ["body", "run_at"]),
        ({"job_type": "noop", "run_at": "0001-01-01T00:00:00+05:00"}, ["body", "run_at"]),
        ({"job_type": "noop", "queue_name": "a\u0000b"}, ["body", "queue_name"]),
        ({"job_type": "noop", "idempotency_key": "k" * 300}, ["body", "idempotency_key"]),
        ({"job_type": "noop", "payload": {"k": "\u0000"}}, ["body", "payload", "k"]),
        ({"job_type": "noop", "payload": {"a": [{"\u0000": 1}]}}, ["body", "payload", "a", 0]),
        ({"job_type": "noop", "surprise": 1}, ["body", "surprise"]),
    ],
)
async def test_422_names_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await client.post(JOBS, json=body)
    assert response.status_code == 422, response.text
    assert first_error(response)["loc"] == loc


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (b'{"job_type": "noop", "payload": {"x": NaN}}', ["body", "payload", "x"]),
        (b'{"job_type": "noop", "timeout_seconds": Infinity}', ["body", "timeout_seconds"]),
        (b'{"job_type": "noop", "payload": {"s": "\\ud800"}}', ["body", "payload", "s"]),
        (b'{"job_type": "noop", "queue_name": "\\udfff"}', ["body", "queue_name"]),
    ],
)
async def test_values_postgres_cannot_store_are_422(
    client: httpx.AsyncClient, raw: bytes, loc: list[Any]
) -> None:
    response = await post_raw(client, JOBS, raw)
    assert response.status_code == 422, response.text
    assert first_error(response)["loc"] == loc


async def test_unknown_job_type_lists_the_known_ones(client: httpx.AsyncClient) -> None:
    response = await client.post(JOBS, json={**SEED_JOB, "job_type": "send_fax"})
    assert response.status_code == 422
    error = first_error(response)
    assert error["loc"] == ["body", "job_type"]
    for known in ("emails", "images_processing", "noop", "report_generation"):
        assert known in error["msg"]


async def test_a_setting_allows_unknown_job_types(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn, allow_unknown_job_types=True)) as client:
        response = await client.post(JOBS, json={"job_type": "send_fax"})
    assert response.status_code == 201
    assert response.json()["job_type"] == "send_fax"


async def test_payload_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    fits = await client.post(JOBS, json={"job_type": "noop", "payload": {"x": "a" * 900}})
    assert fits.status_code == 201
    over = await client.post(JOBS, json={"job_type": "noop", "payload": {"x": "a" * 1000}})
    assert over.status_code == 413
    assert first_error(over)["loc"] == ["body", "payload"]
    assert "limit is 1000 bytes" in first_error(over)["msg"]
    in_batch = await client.post(
        f"{JOBS}/batch",
        json={"jobs": [{"job_type": "noop"}, {"job_type": "noop", "payload": {"x": "a" * 1000}}]},
    )
    assert in_batch.status_code == 413
    assert first_error(in_batch)["loc"] == ["body", "jobs", 1, "payload"]


async def test_a_huge_body_is_413_before_it_is_parsed(client: httpx.AsyncClient) -> None:
    # far over payload cap + envelope; the Content-Length alone decides
    big = b'{"job_type": "noop", "payload": {"x": "' + b"a" * 200_000 + b'"}}'
    response = await post_raw(client, JOBS, big)
    assert response.status_code == 413
    batch = await post_raw(client, f"{JOBS}/batch", b'{"jobs": [' + b" " * 30_000 + b"]}")
    assert batch.status_code == 413


async def test_a_streamed_body_without_length_is_still_capped(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"job_type": "noop", "payload": {"x": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"}}'

    response = await client.post(
        JOBS, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "limit of 66536 bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"[]", b'"text"', b"null", b"[" * 5000 + b"]" * 5000],
)
async def test_malformed_bodies_are_4xx(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await post_raw(client, JOBS, raw)
    assert 400 <= response.status_code < 500, response.text


# 2000 levels are past Python's own JSON parser: 400 before validation
@pytest.mark.parametrize(("depth", "status"), [(60, 201), (65, 422), (400, 422), (2000, 400)])
async def test_payload_nesting_is_capped(
    client: httpx.AsyncClient, depth: int, status: int
) -> None:
    deep = b'{"job_type": "noop", "payload": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    response = await post_raw(client, f"{JOBS}/batch", b'{"jobs": [' + deep + b"]}")
    assert response.status_code == status, response.text
    if status == 422:
        assert first_error(response)["loc"] == ["body", "jobs", 0, "payload"]


async def test_body_without_json_content_type_is_415(client: httpx.AsyncClient) -> None:
    # it was a 422 that said nothing of the header (issue 24, finding 13)
    response = await client.post(
        JOBS, content=b'{"job_type": "noop"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert first_error(response)["loc"] == ["header", "content-type"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=-1",
        "limit=0",
        "limit=1001",
        "limit=abc",
        "status=bogus",
        "status=pending&status=nope",
        "cursor=%%%",
        "cursor=LTE",  # base64 of "-1"
        "cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # past bigint
        "queue_name=a%00b",
        "job_type=",
    ],
)
async def test_bad_list_queries_are_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"{JOBS}?{query}")
    assert response.status_code == 422, response.text
    assert first_error(response)["loc"][0] == "query"


@pytest.mark.parametrize("job_id", ["0", "-5", "abc", "9223372036854775808", "1.5"])
async def test_bad_job_ids_are_422(client: httpx.AsyncClient, job_id: str) -> None:
    for response in (
        await client.get(f"{JOBS}/{job_id}"),
        await client.post(f"{JOBS}/{job_id}/cancel"),
        await client.post(f"{JOBS}/{job_id}/retry"),
    ):
        assert response.status_code == 422, response.text
        assert first_error(response)["loc"] == ["path", "job_id"]


async def test_wrong_methods_and_paths_are_4xx(client: httpx.AsyncClient) -> None:
    assert (await client.delete(f"{JOBS}/1")).status_code == 405
    assert (await client.get("/api/v1/nothing")).status_code == 404
    assert (await client.get(f"{JOBS}/batch")).status_code == 422
