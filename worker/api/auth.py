"""Bearer-token auth: on when JOBQUEUE_API_TOKEN is set; the routers behind it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Security
from fastapi.params import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.tokens import token_matches

bearer_scheme = HTTPBearer(auto_error=False, description="The value of JOBQUEUE_API_TOKEN.")


def token_dependencies(token: str | None) -> list[Depends]:
    """Route dependencies that demand `Authorization: Bearer <token>`; none when token is None,
    so the OpenAPI schema only declares the scheme when it is enforced. An empty token
    (an unset chart value) counts as none."""
    if not token:
        return []
    expected: str = token

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
    ) -> None:
        if credentials is None or not token_matches(expected, credentials.credentials):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    dependency: Any = Security(check)
    return [dependency]


Responses = dict[int | str, dict[str, Any]]
UNAUTHORIZED: Responses = {401: {"description": "The bearer token is missing or wrong."}}
FIELD_ERRORS: Responses = {
    **UNAUTHORIZED,
    422: {"description": "A field is wrong; `detail[].loc` names it."},
}


def queue_router(token: str | None, tag: str, responses: Responses | None = None) -> APIRouter:
    """A router for /api/v1/queue/..., behind the bearer token when one is set, its routes
    documented under `tag` with `responses` besides their own."""
    return APIRouter(
        prefix="/api/v1/queue",
        tags=[tag],
        dependencies=token_dependencies(token),
        responses=responses,
    )
