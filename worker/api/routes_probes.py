"""Probes and metrics: open unless JOBQUEUE_API_PROTECT_PROBES (and a token) is set. An open
/readyz says what is wrong without the database's own words (host, user), which only an
authenticated caller gets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from worker.api.auth import any_token, token_dependencies
from worker.api.errors import DATABASE_ERRORS
from worker.api.gate import AUTH_SCOPE_KEY
from worker.api.models import Health, Readiness
from worker.api.state import State
from worker.db.errors import is_transient
from worker.db.migrate import current_version, expected_version
from worker.settings import ApiSettings

READY_TIMEOUT_SECONDS = 2.0


def describe_schema(version: int, expected: int) -> str:
    if version == expected:
        return "ok"
    if version < expected:
        return (
            f"schema is at version {version}, this build needs {expected}: run `jobqueue migrate`"
        )
    # Migrations only add, so an older build keeps serving during a rolling upgrade.
    return f"ok: schema is at version {version}, newer than this build's {expected}"


def probes_router(settings: ApiSettings) -> APIRouter:
    protected = settings.api_protect_probes
    router = APIRouter(
        tags=["probes"],
        dependencies=token_dependencies(any_token(settings) if protected else None),
    )

    # Liveness never touches the database: an outage must not get every API pod restarted.
    @router.get("/livez", response_model=Health, summary="The process is up (liveness)")
    @router.get("/healthz", response_model=Health, summary="The process is up (as /livez)")
    async def livez() -> Any:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        response_model=Readiness,
        summary="The database is reachable and its schema is at the expected version",
        responses={503: {"model": Readiness, "description": "Not ready; see `database`."}},
    )
    async def readyz(request: Request, state: State) -> Any:
        # the cause's text names hosts and users: for a caller with a token, or when there is
        # no token at all (then everything is open anyway)
        detailed = not any_token(settings) or request.scope.get(AUTH_SCOPE_KEY) is not None
        expected = expected_version()
        version: int | None = None
        try:
            async with state.connection(acquire_timeout=READY_TIMEOUT_SECONDS) as conn:
                version = await current_version(conn)
        except DATABASE_ERRORS as exc:
            problem = "unreachable" if is_transient(exc) else "refused"
            database = f"{problem}: {type(exc).__name__}" + (f": {exc}" if detailed else "")
        else:
            database = describe_schema(version, expected)
        body = {
            "ready": version is not None and version >= expected,
            "database": database,
            "schema_version": version,
            "expected_schema_version": expected,
        }
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    )
    async def metrics(state: State) -> Response:
        await state.metrics.queue_demand.refresh(state)  # the queues' demand, read now
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    return router
