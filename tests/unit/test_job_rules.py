"""The enqueue options are one definition (worker.job_checks.EnqueueOptions): every client's
parameters come from it or are held to it here, so that none can drift again (worker.client
once lacked unique_key, which the API and the CLI accepted)."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import get_type_hints

import pytest

import jobqueue
from jobqueue.cli_checks import OPTION_OF_FIELD
from worker.api.models import JobIn
from worker.client import enqueue
from worker.db import sql_files
from worker.errors import InvalidJob
from worker.job_checks import (
    OPTION_NAMES,
    EnqueueOptions,
    EnqueueOptionsDict,
    enqueue_options,
    prepare_job,
)


def test_the_typed_keyword_arguments_are_the_model() -> None:
    hints = get_type_hints(EnqueueOptionsDict)
    assert tuple(hints) == OPTION_NAMES
    for name, field in EnqueueOptions.model_fields.items():
        assert not field.is_required(), f"{name}: every option has a default"


def test_the_client_the_api_the_cli_and_sql_take_every_option() -> None:
    client = inspect.signature(enqueue).parameters
    assert [n for n in client if n in OPTION_NAMES] == list(OPTION_NAMES)
    for name in OPTION_NAMES:
        assert client[name].default == EnqueueOptions.model_fields[name].default
    assert set(OPTION_NAMES) <= set(JobIn.model_fields)
    assert set(OPTION_NAMES) <= set(OPTION_OF_FIELD)  # the CLI names each option's flag
    sql = sql_files.query("clients", "jobs_enqueue")
    assert set(re.findall(r"(\w+) =>", sql)) == {*OPTION_NAMES, "job_type", "payload"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_tries": 0}, "max_tries"),
        ({"max_tries": 1001}, "max_tries"),
        ({"queue_name": ""}, "queue_name"),
        ({"queue_name": "x" * 201}, "queue_name"),
        ({"priority": 2**31}, "priority"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"unique_key": ""}, "unique_key"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"concurrency_key": "a\x00b"}, "concurrency_key"),
        ({"depends_on": [0]}, "depends_on[0]"),
        ({"run_at": datetime.now(UTC), "delay_seconds": 1}, "run_at"),
        ({"queue": "typo"}, "queue"),
    ],
)
def test_a_bad_option_is_an_invalid_job_naming_it(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        enqueue_options(options)
    assert caught.value.field == field
    assert isinstance(caught.value, jobqueue.JobQueueError) and isinstance(caught.value, ValueError)


def test_times_without_a_zone_are_utc_and_others_are_converted() -> None:
    naive = enqueue_options({"run_at": datetime(2030, 1, 1, 12)})
    assert naive.run_at == datetime(2030, 1, 1, 12, tzinfo=UTC)
    paris = timezone(timedelta(hours=1))
    assert enqueue_options({"run_at": datetime(2030, 1, 1, 13, tzinfo=paris)}).run_at == (
        naive.run_at
    )


@pytest.mark.parametrize(
    ("job_type", "payload", "field"),
    [
        ("", {}, "job_type"),
        ("x" * 201, {}, "job_type"),
        ("ok", [1], "payload"),
        ("ok", {"a": float("nan")}, "payload.a"),
        ("ok", {"a": ["\x00"]}, "payload.a[0]"),
        ("ok", {"a": "x" * (256 * 1024)}, "payload"),
    ],
)
def test_a_bad_job_is_refused_naming_the_field(job_type: str, payload: object, field: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        prepare_job(job_type, payload, {})
    assert caught.value.field == field
