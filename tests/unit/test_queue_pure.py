"""Pure parts of the queue: backoff, error and result cleaning, pairing enqueue rows to inputs."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.db.jobs import NewJob, _pair_with_inputs
from worker.handlers.base import PermanentError
from worker.runtime.executor import MAX_ERROR_CHARS, clean_error, result_to_json
from worker.runtime.resilience import backoff_delay


@given(
    attempt=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0, max_value=100),
    cap=st.floats(min_value=0, max_value=10_000),
    rand=st.floats(min_value=0, max_value=1),
)
def test_backoff_stays_between_half_and_all_of_the_capped_exponential(
    attempt: int, base: float, cap: float, rand: float
) -> None:
    full = min(cap, base * 2.0 ** min(attempt - 1, 62))
    delay = backoff_delay(attempt, base, cap, rand=lambda: rand)
    assert math.isfinite(delay)
    assert full / 2 - 1e-9 <= delay <= full + 1e-9


def test_backoff_doubles_per_attempt_until_the_cap() -> None:
    top = [backoff_delay(n, 2.0, 60.0, rand=lambda: 1.0) for n in range(1, 8)]
    assert top == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    bottom = [backoff_delay(n, 2.0, 60.0, rand=lambda: 0.0) for n in range(1, 4)]
    assert bottom == [1.0, 2.0, 4.0]


def test_clean_error_drops_nul_and_truncates() -> None:
    assert clean_error("a\x00b") == "ab"
    long = clean_error("x" * (MAX_ERROR_CHARS + 50))
    assert len(long) == MAX_ERROR_CHARS + 3 and long.endswith("...")


@pytest.mark.parametrize("bad", [float("nan"), {"x": float("inf")}, {1, 2}, object(), "a\x00"])
def test_results_that_jsonb_refuses_are_permanent_errors(bad: object) -> None:
    with pytest.raises(PermanentError):
        result_to_json(bad)


def test_result_to_json_keeps_ordinary_values() -> None:
    assert result_to_json({"a": [1, 2.5, None, "é"]}) == '{"a": [1, 2.5, null, "\\u00e9"]}'
    assert result_to_json(None) == "null"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"job_type": ""},
        {"job_type": "x", "queue_name": ""},
        {"job_type": "x", "payload": [1]},
        {"job_type": "x", "max_tries": 0},
        {"job_type": "x", "delay_seconds": -1},
        {"job_type": "x", "delay_seconds": float("inf")},
        {"job_type": "x", "timeout_seconds": 0},
        {"job_type": "x", "run_at": datetime(2030, 1, 1)},
        {"job_type": "x", "run_at": datetime(2030, 1, 1, tzinfo=UTC), "delay_seconds": 1},
    ],
)
def test_new_job_rejects_bad_fields(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        NewJob(**kwargs)


def _row(job_id: int, key: str | None, created: bool) -> dict:
    now = datetime.now(UTC)
    return {
        "created": created,
        "id": job_id,
        "queue_name": "default",
        "job_type": "t",
        "payload": {},
        "status": "pending",
        "priority": 0,
        "run_at": now,
        "attempts": 0,
        "max_tries": 3,
        "last_error": None,
        "result": None,
        "idempotency_key": key,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
        "worker_id": None,
        "timeout_seconds": None,
    }


def test_pairing_keeps_input_order_and_reports_duplicates() -> None:
    inputs = [
        NewJob("t", idempotency_key="old"),
        NewJob("t"),
        NewJob("t", idempotency_key="new"),
        NewJob("t", idempotency_key="new"),
        NewJob("t"),
    ]
    rows = [_row(9, None, True), _row(1, "old", False), _row(7, None, True), _row(8, "new", True)]
    paired = _pair_with_inputs(inputs, rows)
    assert paired is not None
    assert [(job.id, created) for job, created in paired] == [
        (1, False),
        (7, True),
        (8, True),
        (8, False),
        (9, True),
    ]


def test_pairing_notices_a_key_whose_row_is_missing() -> None:
    assert _pair_with_inputs([NewJob("t", idempotency_key="k")], []) is None
