"""Exception handlers: client input gets a 4xx naming the field, a database outage a 503."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker.api.validation import InputError, InvalidJob, sanitize_errors
from worker.db.errors import DatabaseUnavailable, JobNotFound, JobStateConflict, is_transient

log = logging.getLogger(__name__)

# Whatever the database layer can raise; `is_transient` tells an outage (503) from a bug.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    OSError,
    TimeoutError,  # also the pool giving no connection in time
    asyncpg.InterfaceError,
    asyncpg.PostgresError,
)


class ErrorResponse(JSONResponse):
    """ASCII-only JSON, so that no echoed text can fail to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, default=str).encode()


def _detail(status_code: int, detail: Any, headers: dict[str, str] | None = None) -> ErrorResponse:
    return ErrorResponse({"detail": detail}, status_code=status_code, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> ErrorResponse:
    assert isinstance(exc, RequestValidationError)
    return _detail(422, sanitize_errors(exc.errors()))


async def _input_error(request: Request, exc: Exception) -> ErrorResponse:
    assert isinstance(exc, InputError)
    return _detail(exc.status_code, exc.as_detail())


async def _invalid_job(request: Request, exc: Exception) -> ErrorResponse:
    assert isinstance(exc, InvalidJob)
    return _detail(413 if exc.kind == "payload_too_large" else 422, exc.as_detail())


async def _http_error(request: Request, exc: Exception) -> ErrorResponse:
    assert isinstance(exc, StarletteHTTPException)
    # a 413 raised while the body was read already names its limit and setting (api/gate.py)
    return _detail(exc.status_code, exc.detail, dict(exc.headers) if exc.headers else None)


async def _not_found(request: Request, exc: Exception) -> ErrorResponse:
    return _detail(404, str(exc))


async def _conflict(request: Request, exc: Exception) -> ErrorResponse:
    assert isinstance(exc, JobStateConflict)
    return ErrorResponse({"detail": str(exc), "status": exc.status}, status_code=409)


async def _unique_key_held(request: Request, exc: Exception) -> ErrorResponse:
    # e.g. retrying a failed job whose unique_key another active job holds meanwhile
    return _detail(409, f"another active job holds this unique_key: {exc}")


async def _database_down(request: Request, exc: Exception) -> ErrorResponse:
    if not is_transient(exc):  # a bug or a refused login: not something to retry
        log.error("%s %s failed: %r", request.method, request.url.path, exc, exc_info=exc)
        return _detail(500, "internal error; the API's log has the details")
    log.warning("database unavailable during %s %s: %r", request.method, request.url.path, exc)
    return _detail(503, "the database is unavailable; retry later", {"Retry-After": "5"})


async def _database_refused_value(request: Request, exc: Exception) -> ErrorResponse:
    # Validation should have caught it first; this keeps a missed case a 4xx, and logged.
    log.warning(
        "database refused a client value in %s %s: %r", request.method, request.url.path, exc
    )
    return _detail(422, f"the database refused a value: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(InvalidJob, _invalid_job)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(JobNotFound, _not_found)
    app.add_exception_handler(JobStateConflict, _conflict)
    # Database errors go to one handler that asks is_transient: an outage is a 503 with
    # Retry-After, whatever form it took (a reset socket, a closed connection, a pool with
    # no free connection in time, a server shutting down).
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database_down)
    # SQLSTATE class 22 (data exception) and CHECK violations come only from values sent
    app.add_exception_handler(asyncpg.DataError, _database_refused_value)
    app.add_exception_handler(asyncpg.CheckViolationError, _database_refused_value)
    app.add_exception_handler(asyncpg.UniqueViolationError, _unique_key_held)
