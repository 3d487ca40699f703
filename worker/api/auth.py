"""Bearer-token auth, as the OpenAPI schema declares it; the gate (worker/api/gate.py)
enforces it, with the scopes of worker/scopes.py, before a body is read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security
from fastapi.params import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.scopes import token_matches
from worker.settings import ApiSettings

__all__ = ["any_token", "queue_router", "token_dependencies", "token_matches"]

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="JOBQUEUE_API_TOKEN (admin), JOBQUEUE_API_READ_TOKEN (every GET) or "
    "JOBQUEUE_API_ENQUEUE_TOKEN (POST /jobs and /jobs/batch, GET of one job or batch).",
)


def any_token(settings: ApiSettings) -> bool:
    """Auth is on when any of the three tokens is set; an empty one (an unset chart value)
    counts as none."""
    return bool(settings.api_token or settings.api_read_token or settings.api_enqueue_token)


def token_dependencies(enabled: bool | str | None) -> list[Depends]:
    """The bearer scheme on a router's routes, so that the schema declares it when it is
    enforced; the gate has checked the token by the time a route runs."""
    if not enabled:
        return []

    async def declared(
        credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
    ) -> None:
        return None

    dependency: Any = Security(declared)
    return [dependency]


Responses = dict[int | str, dict[str, Any]]
UNAUTHORIZED: Responses = {
    401: {"description": "The bearer token is missing or wrong."},
    403: {"description": "The token's scope does not allow this request."},
}
FIELD_ERRORS: Responses = {
    **UNAUTHORIZED,
    422: {"description": "A field is wrong; `detail[].loc` names it."},
}


def queue_router(
    enabled: bool | str | None, tag: str, responses: Responses | None = None
) -> APIRouter:
    """A router for /api/v1/queue/..., behind the bearer token when one is set, its routes
    documented under `tag` with `responses` besides their own."""
    return APIRouter(
        prefix="/api/v1/queue",
        tags=[tag],
        dependencies=token_dependencies(enabled),
        responses=responses,
    )
