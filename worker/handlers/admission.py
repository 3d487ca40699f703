"""What the REST API and the CLI check of a new job besides its options (those are
worker.job_checks.EnqueueOptions): that a handler knows its type, that PostgreSQL can store its
payload within the size cap, and that the payload passes its job type's model (a typed task's
own, the very one its handler gets), the operator's limits on it (JOBQUEUE_DISABLED_HANDLERS,
the built-ins' payload limits), and that no idempotency key takes the scheduler's form. One
class serves POST /jobs, POST /jobs/batch,
POST /schedules, `jobqueue enqueue` and `jobqueue schedules add`, so that the CLI never takes
a job the API would refuse. Every refusal is an InvalidJob whose loc names the field."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from worker.db.jobs import NewJob
from worker.errors import InvalidJob, Loc
from worker.handlers.base import registry
from worker.handlers.payload import InvalidPayload, limit_check
from worker.job_checks import EnqueueOptions, check_disabled_type, check_job_type, check_payload
from worker.settings import ApiSettings, HandlerLimits

# The scheduler's idempotency keys (`schedule:<name>:<tick>`): no producer may take a future
# tick's key and so suppress it.
RESERVED_KEY_PREFIX = "schedule:"

_FIELD_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def field_loc(field: str) -> Loc:
    """`aggregations[0].column` as a loc: ("aggregations", 0, "column")."""
    return tuple(int(index) if index else name for index, name in _FIELD_PART.findall(field)) or (
        field,
    )


def check_payload_model(
    job_type: str, payload: Any, loc: Loc = ("payload",), limits: HandlerLimits | None = None
) -> None:
    """The job type's payload model, when it declared one (only those pay for a check), and
    the operator's limits on its payloads when given and the type has some: an InvalidJob at
    `loc` plus the field's path, e.g. ("payload", "width")."""
    check = registry.payload_check(job_type)
    bounds = limit_check(job_type) if limits is not None else None
    try:
        if check is not None:
            check(payload)
        if bounds is not None and limits is not None:
            bounds(payload, limits)
    except InvalidPayload as exc:
        where = (*loc, *field_loc(exc.field))
        raise InvalidJob(where, f"{job_type}: {exc.problem}", kind="payload") from None


class JobAdmission:
    def __init__(
        self,
        known_job_types: Sequence[str],
        *,
        allow_unknown: bool,
        max_payload_bytes: int,
        missing_extras: Mapping[str, str] | None = None,
        limits: HandlerLimits | None = None,
    ) -> None:
        self.known_job_types = list(known_job_types)
        self._known = frozenset(self.known_job_types)
        self._allow_unknown = allow_unknown
        self._max_payload_bytes = max_payload_bytes
        self._missing_extras = dict(missing_extras or {})
        self._limits = limits
        self._disabled = tuple(limits.disabled_handlers) if limits is not None else ()

    @classmethod
    def of(cls, settings: ApiSettings, known_job_types: Sequence[str]) -> JobAdmission:
        """As the API's settings say (the API and the CLI alike)."""
        return cls(
            known_job_types,
            allow_unknown=settings.allow_unknown_job_types,
            max_payload_bytes=settings.api_max_payload_bytes,
            missing_extras=registry.missing_extras,
            limits=settings.handler_limits,
        )

    def payload_text(self, job_type: str, payload: dict[str, Any], loc: Loc = ()) -> str:
        """The payload's JSON text, to be inserted as it is (each payload is serialised once),
        once the job passed; else an InvalidJob under `loc` (a batch item's place, say)."""
        if job_type not in self._known:  # the error lists the known types in their order
            check_disabled_type(job_type, (*loc, "job_type"), self._disabled)
            check_job_type(
                job_type,
                (*loc, "job_type"),
                self.known_job_types,
                self._allow_unknown,
                self._missing_extras,
            )
        payload_loc = (*loc, "payload")
        text = check_payload(payload, payload_loc, self._max_payload_bytes)
        check_payload_model(job_type, payload, payload_loc, self._limits)
        return text

    def new_job(
        self,
        job_type: str,
        payload: dict[str, Any],
        options: EnqueueOptions,
        loc: Loc = (),
        traceparent: str | None = None,
    ) -> NewJob:
        """The data layer's input for a job whose options passed EnqueueOptions (the API's
        JobIn is one), once the job itself passes; else an InvalidJob naming the field."""
        key = options.idempotency_key
        if key is not None and key.startswith(RESERVED_KEY_PREFIX):
            raise InvalidJob(
                (*loc, "idempotency_key"),
                f"keys starting with {RESERVED_KEY_PREFIX!r} belong to the scheduler's ticks",
            )
        return NewJob(
            job_type=job_type,
            payload=payload,
            payload_json=self.payload_text(job_type, payload, loc),
            queue_name=options.queue_name,
            priority=options.priority,
            run_at=options.run_at,
            delay_seconds=options.delay_seconds,
            max_tries=options.max_tries,
            idempotency_key=options.idempotency_key,
            timeout_seconds=options.timeout_seconds,
            unique_key=options.unique_key,
            concurrency_key=options.concurrency_key,
            traceparent=traceparent,
        )
