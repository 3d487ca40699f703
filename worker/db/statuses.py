"""The job statuses, in the order of the SQL enum `job_status` (0001_initial.sql, with `blocked`
appended by 0004_queues_and_decisions.sql). The API, the inspection queries and the CLI all
take them from here; tests/integration/test_queue_statuses.py checks the enum agrees."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    blocked = "blocked"  # waiting on the jobs it depends on


JOB_STATUSES: tuple[str, ...] = tuple(status.value for status in JobStatus)
