"""A payload the job type's handler would refuse gets a 422 naming the field at enqueue time,
for the built-in handlers and for users' own (the example in docs/handlers.md)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "handlers.md"
EMAIL = SEED_JOB["payload"]


@pytest.fixture
async def client(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    # the docs' example module, exactly as written there
    section = DOCS.read_text().split("## Payload models", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "thumbnails.py").write_text(code.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = api_settings(pg_dsn, handler_modules=["thumbnails"])
    async with api_client(settings) as c:
        yield c


def error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    first: dict[str, Any] = response.json()["detail"][0]
    return first


@pytest.mark.parametrize(
    ("job_type", "payload", "loc", "says"),
    [
        ("emails", {"to": "a@example.com", "body": "x"}, ["subject"], "is required"),
        ("emails", {**EMAIL, "to": ["a@example.com", "nope"]}, ["to", 1], "not a valid"),
        ("emails", {**EMAIL, "subject": "two\nlines"}, ["subject"], "line breaks"),
        ("report_generation", {"rows": []}, ["report_type"], "is required"),
        (
            "report_generation",
            {
                "report_type": "r",
                "rows": [{"x": 1}],
                "aggregations": [{"op": "sum", "column": "y"}],
            },
            ["aggregations", 0, "column"],
            "unknown column",
        ),
        ("images_processing", {"operation": "resize", "width": 10}, ["path"], "exactly one"),
        (
            "images_processing",
            {"operation": "spin", "path": "a.png"},
            ["operation"],
            "must be one of",
        ),
        ("thumbnail", {"url": "u", "width": 0}, ["width"], "greater than 0"),
        ("thumbnail", {"width": 10}, ["url"], "required"),
    ],
)
async def test_a_payload_the_handler_would_refuse_is_a_422_naming_the_field(
    client: httpx.AsyncClient, job_type: str, payload: dict[str, Any], loc: list[Any], says: str
) -> None:
    found = error(await client.post(JOBS, json={"job_type": job_type, "payload": payload}))
    assert found["loc"] == ["body", "payload", *loc]
    assert says in found["msg"] and job_type in found["msg"]
    assert (await client.get(JOBS)).json()["jobs"] == []  # nothing was enqueued


async def test_a_batch_names_the_item_and_field_and_enqueues_nothing(
    client: httpx.AsyncClient,
) -> None:
    good = {"job_type": "thumbnail", "payload": {"url": "u", "width": 64}}
    bad = {"job_type": "thumbnail", "payload": {"url": "u", "width": 99999}}
    response = await client.post(f"{JOBS}/batch", json={"jobs": [good, SEED_JOB, bad]})
    assert error(response)["loc"] == ["body", "jobs", 2, "payload", "width"]
    assert (await client.get(JOBS)).json()["jobs"] == []


async def test_valid_payloads_are_enqueued(client: httpx.AsyncClient) -> None:
    created = await client.post(
        JOBS, json={"job_type": "thumbnail", "payload": {"url": "u", "width": 64}}
    )
    assert created.status_code == 201, created.text
    batch = await client.post(f"{JOBS}/batch", json={"jobs": [SEED_JOB, SEED_JOB]})
    assert batch.status_code == 201, batch.text
    assert batch.json()["created"] == 2
