"""The context a handler gets: the runtime's fast constructor makes the same object as the
dataclass's own, and it stays immutable."""

from __future__ import annotations

import dataclasses

import pytest

from worker.handlers import JobContext


def test_for_job_makes_what_the_dataclass_makes() -> None:
    values = {
        "job_id": 7,
        "job_type": "emails",
        "queue_name": "mail",
        "attempt": 2,
        "max_tries": 5,
        "worker_id": "w-1",
        "worker_name": "pod-a",
    }
    fast, slow = JobContext.for_job(**values), JobContext(**values)
    assert fast == slow and vars(fast) == vars(slow)
    # a field added to JobContext must be added to for_job too
    assert set(vars(fast)) == {field.name for field in dataclasses.fields(JobContext)}
    assert fast.extra is not JobContext.for_job(**values).extra  # each job its own dict
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.job_id = 8  # type: ignore[misc]


def test_a_handler_sees_no_settings() -> None:
    """User handlers used to get every built-in handler's settings (SMTP password included) as
    ctx.config; the built-ins now read theirs in worker.handlers.config."""
    names = {field.name for field in dataclasses.fields(JobContext)}
    assert not names & {"config", "settings", "smtp", "outbox_dir", "images_dir", "reports_dir"}
