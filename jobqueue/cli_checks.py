"""The API's checks on a new job, for `jobqueue enqueue` and `jobqueue schedules add`: the enqueue
options through the one definition every client shares (worker.job_checks.EnqueueOptions, which
POST /jobs's body extends: bounds, queue names, keys), then the job itself through the API's
own admission (worker.handlers.admission: known job type, what PostgreSQL stores, the size
cap, the job type's payload model). So the CLI never enqueues a job that POST /jobs would
refuse, and it needs none of the API's packages. Errors name the option, not the JSON field."""

from __future__ import annotations

from typing import Any

from jobqueue.cli_common import fail, load_settings
from worker.db.jobs import NewJob
from worker.errors import InvalidJob, Loc
from worker.handlers import known_job_types
from worker.handlers.admission import JobAdmission
from worker.job_checks import check_job_type_name, enqueue_options

# The command's option for each field; tests/unit/test_job_rules.py holds that every enqueue
# option has one.
OPTION_OF_FIELD = {
    "job_type": "JOB_TYPE",
    "payload": "--payload",
    "queue_name": "--queue",
    "priority": "--priority",
    "run_at": "--run-at",
    "delay_seconds": "--delay",
    "max_tries": "--max-tries",
    "idempotency_key": "--idempotency-key",
    "timeout_seconds": "--timeout",
    "unique_key": "--unique-key",
    "concurrency_key": "--concurrency-key",
    "depends_on": "--depends-on",
    "run_on_failure": "--run-on-failure",
}


def where(loc: Loc) -> str:
    """("payload", "to", 1) as `--payload.to.1`; ("queue_name",) as `--queue`."""
    parts = [str(p) for p in loc] or ["input"]
    return ".".join([OPTION_OF_FIELD.get(parts[0], parts[0]), *parts[1:]])


def checked_job(job_type: str, payload: dict[str, Any], **options: Any) -> NewJob:
    """The job as POST /jobs would accept it, or the command ends naming the option."""
    settings = load_settings().api
    try:
        check_job_type_name(job_type)
        checked = enqueue_options(options)
        known = known_job_types(settings.handler_modules, settings.handler_limits.disabled_handlers)
        admission = JobAdmission.of(settings, known)
        return admission.new_job(job_type, payload, checked)
    except InvalidJob as exc:
        fail(f"{where(exc.loc)}: {exc.problem}")
