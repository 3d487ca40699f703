"""Errors the data layer raises for callers to map (the REST API turns them into 404 and 409)."""

from __future__ import annotations


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobStateConflict(RuntimeError):
    """The job exists but its status does not allow the action."""

    def __init__(self, job_id: int, status: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id}: it is {status}")
        self.job_id = job_id
        self.status = status
        self.action = action
