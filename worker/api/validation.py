"""What the API's request models and error bodies share beyond the rules of a new job in
worker/job_checks.py (re-exported here for the API's modules): the API's own input errors
(with their HTTP status), text without NUL for query parameters, and pydantic's errors without
the client's input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

from worker.errors import InvalidJob, Loc
from worker.job_checks import QueueName, check_job_type, check_payload, check_schedule, no_nul

__all__ = [
    "InputError",
    "InvalidJob",
    "Loc",
    "QueueName",
    "TextParam",
    "check_job_type",
    "check_payload",
    "check_schedule",
    "no_nul",
    "sanitize_errors",
]


class InputError(Exception):
    """A request the API refuses, naming the field: rendered like FastAPI's validation errors
    with its status_code. (A refused job is an InvalidJob, which knows no HTTP.)"""

    def __init__(self, status_code: int, loc: Loc, msg: str, kind: str) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.loc = loc
        self.msg = msg
        self.kind = kind

    def as_detail(self) -> list[dict[str, Any]]:
        return [{"loc": list(self.loc), "msg": self.msg, "type": self.kind}]

    @classmethod
    def from_invalid(cls, exc: InvalidJob, *prefix: str | int) -> InputError:
        status = 413 if exc.kind == "payload_too_large" else 422
        return cls(status, (*prefix, *exc.loc), exc.problem, exc.kind)


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
