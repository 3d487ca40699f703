"""What the API's request models and error bodies share beyond the job checks of
worker/job_checks.py (re-exported here for the API's modules): text without NUL for query
parameters, and pydantic's errors without the client's input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

from worker.job_checks import (
    QUEUE_NAME_MAX,
    InputError,
    Loc,
    check_job_type,
    check_payload,
    check_queue_name,
    check_schedule,
    known_job_types,
)

__all__ = [
    "InputError",
    "Loc",
    "QueueName",
    "TextParam",
    "check_job_type",
    "check_payload",
    "check_schedule",
    "known_job_types",
    "no_nul",
    "sanitize_errors",
]


def no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL characters.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# A queue a request creates or addresses (a job's queue_name, a schedule's, /queues/{name}):
# a 422 names the field and says what a name may hold. Filters keep TextParam, so that a
# queue made before names were checked can still be listed.
QueueName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=QUEUE_NAME_MAX),
    AfterValidator(check_queue_name),
]

# A name given as a query parameter (queue_name, job_type filters).
TextParam = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]


def sanitize_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """pydantic's errors without `input` and `ctx`: they echo client data that may not even
    be encodable as JSON (NaN, lone surrogates) and can be large."""
    cleaned = []
    for error in errors:
        loc = [part if isinstance(part, int | str) else str(part) for part in error.get("loc", ())]
        msg = str(error.get("msg", ""))
        if error.get("type") == "json_invalid":  # say what and where: loc holds the offset
            msg = f"{msg}: {error.get('ctx', {}).get('error', '')} at character {loc[-1]}"
            loc = loc[:1]
        cleaned.append({"loc": loc, "msg": msg, "type": error.get("type")})
    return cleaned
