"""Property-based requests from the OpenAPI schema against a real `jobqueue api` process:
whatever schemathesis sends, the answer is never a 5xx and matches the documented schema.

Each operation gets MAX_EXAMPLES valid and MAX_EXAMPLES invalid requests, derandomized so a
run is repeatable. (schemathesis' own pytest loader does not work with this pytest, so the
strategies are driven with hypothesis directly.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.fixtures import postgres as pg
from tests.integration.api_support import api_process, api_settings
from worker.api.app import create_app

MAX_EXAMPLES = 40
# The scoped tokens (DESIGN.md, "Tokens"): each operation, sent valid requests under a token
# whose scope may or may not cover it, answers 2xx, 403 or a 4xx of its input; never a 5xx.
SCOPED_EXAMPLES = 15
TOKENS = {"admin": "st-admin-token", "read": "st-read-token", "enqueue": "st-enqueue-token"}


def operations() -> list[tuple[str, GenerationMode]]:
    """`METHOD /path` of every operation with the modes it can take, from the app's schema
    (building it needs no database). Only operations with inputs can be sent invalid ones."""
    settings = api_settings("postgresql://unused@127.0.0.1:1/unused")
    spec = create_app(settings.api, settings.dsn).openapi()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            found.append((label, GenerationMode.POSITIVE))
            if operation.get("requestBody") or any(
                not _text_in_path(p) for p in operation.get("parameters", ())
            ):
                found.append((label, GenerationMode.NEGATIVE))
    return found


def _text_in_path(parameter: dict[str, object]) -> bool:
    """A text path segment: its only invalid values are the empty segment, a NUL or an
    over-long name, which a URL mostly cannot carry, so schemathesis may find none to send
    (hypothesis then fails as Unsatisfiable, depending on how the whole schema seeds it).
    Those operations get their invalid names from explicit tests (test_sched_queues,
    test_sched_schedules); any other parameter or a body keeps the negative mode."""
    schema = parameter.get("schema")
    return (
        parameter.get("in") == "path"
        and isinstance(schema, dict)
        and schema.get("type") == "string"
    )


@pytest.fixture(scope="module")
async def module_dsn(pg_server: pg.PostgresServer | pg.ExternalServer) -> AsyncIterator[str]:
    """One migrated database for the whole run: each operation's examples share it."""
    name = pg.unique_db_name("st")
    await pg.create_database(pg_server.dsn(), name, template=pg_server.template)  # type: ignore[union-attr]
    try:
        yield pg_server.dsn(name)
    finally:
        await pg.drop_database(pg_server.dsn(), name)


@contextmanager
def schema_of_api(
    module_dsn: str, tmp_path_factory: pytest.TempPathFactory, **env: str
) -> Iterator[schemathesis.BaseSchema]:
    """A real `jobqueue api` and the schema it serves. Any job_type, so that generated jobs
    reach the database instead of stopping at the known-types check; a small payload cap, so
    that they also reach the 413 path."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with api_process(
        module_dsn,
        Path(log),
        JOBQUEUE_ALLOW_UNKNOWN_JOB_TYPES="true",
        JOBQUEUE_API_MAX_PAYLOAD_BYTES="2048",
        **env,
    ) as api:
        yield schemathesis.openapi.from_url(f"{api.url}/openapi.json")


@pytest.fixture(scope="module")
def api_schema(
    module_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    with schema_of_api(module_dsn, tmp_path_factory) as schema:
        yield schema


@pytest.fixture(scope="module")
def scoped_schema(
    module_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    with schema_of_api(
        module_dsn,
        tmp_path_factory,
        JOBQUEUE_API_TOKEN=TOKENS["admin"],
        JOBQUEUE_API_READ_TOKEN=TOKENS["read"],
        JOBQUEUE_API_ENQUEUE_TOKEN=TOKENS["enqueue"],
    ) as schema:
        yield schema


def shorten_waits(case: schemathesis.Case) -> None:
    """A valid wait_seconds (GET /jobs/{id}) really waits, up to 60 s: keep it short so that
    the run does not, and leave invalid values as generated."""
    query = case.query or {}
    try:
        seconds = float(query.get("wait_seconds"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    if 0.2 < seconds <= 60:
        query["wait_seconds"] = 0.2


def run_examples(
    schema: schemathesis.BaseSchema,
    label: str,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str] | None = None,
) -> list[int]:
    """`examples` requests of `mode` for one operation, each checked for a 5xx and against the
    schema; the status codes seen."""
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    seen: list[int] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        shorten_waits(case)
        response = case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )
        seen.append(response.status_code)

    check()
    return seen


@pytest.mark.parametrize(("label", "mode"), operations())
def test_no_input_gets_a_5xx(
    api_schema: schemathesis.BaseSchema, label: str, mode: GenerationMode
) -> None:
    run_examples(api_schema, label, mode, MAX_EXAMPLES)


@pytest.mark.parametrize("scope", ["read", "enqueue", "none"])
@pytest.mark.parametrize(
    "label", sorted({label for label, _ in operations()}), ids=lambda label: label
)
def test_no_scope_gets_a_5xx(
    scoped_schema: schemathesis.BaseSchema, label: str, scope: str
) -> None:
    headers = {"Authorization": f"Bearer {TOKENS[scope]}"} if scope in TOKENS else {}
    seen = run_examples(scoped_schema, label, GenerationMode.POSITIVE, SCOPED_EXAMPLES, headers)
    if scope == "none" and label.split()[1].startswith("/api/"):
        assert set(seen) == {401}, (label, seen)
