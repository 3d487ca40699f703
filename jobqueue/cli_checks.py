"""The API's checks on a new job, for `jobqueue enqueue` and `jobqueue schedules add`: the
request model (bounds, queue names, keys) and the enqueue service's own (known job type, what
PostgreSQL stores, the size cap, the job type's payload model). One set of rules, so the CLI
never enqueues a job that POST /jobs would refuse. Errors name the option, not the JSON field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from jobqueue.cli_common import fail, load_settings
from worker.api.enqueue import EnqueueService
from worker.api.models import JobIn
from worker.db.jobs import NewJob
from worker.job_checks import InputError, Loc, known_job_types

OPTION_OF_FIELD = {
    "job_type": "JOB_TYPE",
    "payload": "--payload",
    "queue_name": "--queue",
    "priority": "--priority",
    "max_tries": "--max-tries",
    "delay_seconds": "--delay",
    "idempotency_key": "--idempotency-key",
    "timeout_seconds": "--timeout",
    "unique_key": "--unique-key",
    "concurrency_key": "--concurrency-key",
}


def where(loc: Loc) -> str:
    """("payload", "to", 1) as `--payload.to.1`; ("queue_name",) as `--queue`."""
    parts = [str(p) for p in loc if p != "body"] or ["input"]
    return ".".join([OPTION_OF_FIELD.get(parts[0], parts[0]), *parts[1:]])


def checked_job(**fields: Any) -> NewJob:
    """The job as POST /jobs would accept it, or the command ends naming the option."""
    settings = load_settings().api
    try:
        job = JobIn(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        fail(f"{where(tuple(error['loc']))}: {message}")
    service = EnqueueService(settings, known_job_types(settings.handler_modules))
    try:
        return service.prepare(job, ())
    except InputError as exc:
        fail(f"{where(exc.loc)}: {exc.msg}")
