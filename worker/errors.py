"""The errors users can catch, under one base: `jobqueue.JobQueueError`.

This module imports nothing of the project, so that every layer (the rules of a new job, the
data layer, the client, the API, the CLI) raises the same classes. `jobqueue` re-exports the
public ones.
"""

from __future__ import annotations

Loc = tuple[str | int, ...]


class JobQueueError(Exception):
    """The base of every error job-queue raises on purpose."""


def field_path(loc: Loc) -> str:
    """("jobs", 3, "payload", "width") as `jobs[3].payload.width`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class InvalidJob(JobQueueError, ValueError):
    """A new job was refused before it was stored: `field` names what is wrong (a dotted path
    into the payload for its fields, e.g. `payload.width`), `problem` says how.

    Raised the same way whatever the caller holds: the Python client on any driver, a typed
    task's `enqueue`, the CLI (printed as one line) and the REST API (a 422 whose
    `detail[0].loc` is `loc`). `kind` is the API's error type; a payload over the size cap is
    `payload_too_large`, which the API answers with 413."""

    def __init__(self, field: str | Loc, problem: str, *, kind: str = "value_error") -> None:
        self.loc: Loc = (field,) if isinstance(field, str) else tuple(field)
        self.field = field if isinstance(field, str) else field_path(self.loc)
        self.problem = problem
        self.kind = kind
        super().__init__(f"{self.field}: {problem}" if self.field else problem)

    def within(self, *prefix: str | int) -> InvalidJob:
        """The same error, located under `prefix` (e.g. a batch item's place)."""
        return InvalidJob((*prefix, *self.loc), self.problem, kind=self.kind)

    def as_detail(self) -> list[dict[str, object]]:
        """As FastAPI renders its own validation errors."""
        return [{"loc": list(self.loc), "msg": self.problem, "type": self.kind}]


class MissingExtra(JobQueueError, ImportError):
    """A part of job-queue that needs an optional extra that is not installed."""

    def __init__(self, what: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'job-queue[{extra}]'")


class TaskConflict(JobQueueError, ValueError):
    """Two typed tasks declared with one name: the message names both places."""
