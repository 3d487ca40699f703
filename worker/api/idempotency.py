"""An idempotency key names one job: sent again with the same job, it answers that job (200);
sent with another job (another type, queue or payload), it is a 409 naming the key, where
before the first job came back as if the second had been made.

The scheduler's keys (`schedule:<name>:<tick>`) are refused from the API and the CLI, so that no
producer can take a future tick's key and suppress it (worker/handlers/admission.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.api.validation import InputError, Loc
from worker.db.idempotency import KeyHolder, jobs_holding
from worker.db.jobs import Executor, NewJob


def differs(holder: KeyHolder, job: NewJob) -> bool:
    return (holder.job_type, holder.queue_name, holder.payload) != (
        job.job_type,
        job.queue_name,
        job.payload,
    )


def conflict(key: str, holder: KeyHolder, loc: Loc) -> InputError:
    return InputError(
        409,
        (*loc, "idempotency_key"),
        f"idempotency_key {key!r} already names job {holder.id}, a different job "
        f"({holder.job_type} in queue {holder.queue_name}); send that job again, or use a new key",
        "idempotency_conflict",
    )


async def check_reused_keys(
    executor: Executor, jobs: Sequence[tuple[Loc, NewJob]], created: Sequence[bool]
) -> None:
    """Raise a 409 for the first job whose key named another job already; `created` says,
    per job, whether this request made it. Call it inside the request's transaction, so that a
    batch refused here leaves nothing behind."""
    reused = {
        job.idempotency_key: (loc, job)
        for (loc, job), made in zip(jobs, created, strict=True)
        if not made and job.idempotency_key is not None
    }
    if not reused:
        return
    holders = await jobs_holding(executor, list(reused))
    for (loc, job), made in zip(jobs, created, strict=True):
        key = job.idempotency_key
        if made or key is None or key not in holders:
            continue
        if differs(holders[key], job):
            raise conflict(key, holders[key], loc)
