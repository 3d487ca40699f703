"""The console's pure parts: filter parsing, session and CSRF tokens, the charts, and the
throughput estimate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.console.actions import safe_next
from worker.console.filters import MAX_TEXT, parse_filter, parse_job_id
from worker.console.login_limit import LoginLimiter
from worker.console.render import age, replica_chart, sparkline
from worker.console.security import ConsoleKeys, new_nonce, new_session_secret, session_key
from worker.db.console import minute_scale


def test_a_good_filter_parses() -> None:
    spec = parse_filter(
        {"status": "failed", "queue": " mail ", "type": "emails", "before": "40", "limit": "25"}
    )
    assert not spec.errors
    assert (spec.status, spec.queue, spec.job_type, spec.before, spec.limit) == (
        "failed",
        "mail",
        "emails",
        40,
        25,
    )
    assert spec.query(before=10) == "status=failed&queue=mail&type=emails&limit=25&before=10"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"queue": "q" * (MAX_TEXT + 1)}, "queue"),
        ({"type": "a\nb"}, "type"),
        ({"q": "0"}, "q"),
        ({"q": str(2**63)}, "q"),
        ({"before": "abc"}, "before"),
        ({"before": "0"}, "before"),
        ({"limit": "1000000"}, "limit"),
    ],
)
def test_each_bad_value_names_its_field(params: dict[str, str], field: str) -> None:
    spec = parse_filter(params)
    assert list(spec.errors) == [field]
    assert spec.raw[field if field != "limit" else "q"] is not None


@given(st.dictionaries(st.sampled_from(["status", "queue", "type", "q", "before", "limit"]),
                       st.text()))  # fmt: skip
def test_any_query_string_parses_or_names_fields(params: dict[str, str]) -> None:
    spec = parse_filter(params)
    assert set(spec.errors) <= set(params)
    assert spec.before is None or 1 <= spec.before < 2**63
    for value in (spec.queue, spec.job_type, spec.search):
        assert value is None or (0 < len(value) <= MAX_TEXT and "\x00" not in value)


def test_a_session_is_marked_by_its_token_and_scope() -> None:
    keys = ConsoleKeys("s3cret", "r3ad")
    assert keys.login_required
    assert keys.scope_of("s3cret") == "admin" and keys.scope_of("r3ad") == "read"
    assert keys.scope_of("s3cre") is None
    mark = keys.token_mark("admin")
    assert "s3cret" not in mark and keys.mark_ok("admin", mark)
    assert not keys.mark_ok("read", mark) and not keys.mark_ok("admin", mark[:-1] + "0")
    # a new token ends the sessions the old one opened
    assert not ConsoleKeys("other", "r3ad").mark_ok("admin", mark)
    assert ConsoleKeys("other", "r3ad").mark_ok("read", keys.token_mark("read"))
    # the enqueue token opens no console
    assert ConsoleKeys(None, None, closed=True).login_required


def test_the_session_secret_is_not_what_the_database_keeps() -> None:
    secret = new_session_secret()
    assert len(secret) >= 40 and session_key(secret) != secret
    assert session_key(secret) == session_key(secret) != session_key(new_session_secret())


def test_logins_are_limited_per_address() -> None:
    now = [1000.0]
    limiter = LoginLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") is None  # another address is not held
    now[0] += 30
    assert limiter.retry_after("10.0.0.1") == 30
    now[0] += 30.5
    assert limiter.retry_after("10.0.0.1") is None


def test_no_token_needs_no_session_but_still_csrf() -> None:
    keys = ConsoleKeys(None)
    assert not keys.login_required and keys.scope_of("") is None
    nonce = new_nonce()
    assert keys.csrf_ok(nonce, keys.csrf_token(nonce))
    assert not keys.csrf_ok(nonce, keys.csrf_token(new_nonce()))
    assert not keys.csrf_ok(None, keys.csrf_token(nonce)) and not keys.csrf_ok(nonce, None)
    # a token bound to one API token does not pass under another
    assert not ConsoleKeys("a").csrf_ok(nonce, ConsoleKeys("b").csrf_token(nonce))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/console/jobs?status=failed", "/console/jobs?status=failed"),
        ("https://evil.example/console", "/console"),
        ("//evil.example", "/console"),
        ("/console\\@evil", "/console"),
        (None, "/console"),
    ],
)
def test_login_redirects_only_into_the_console(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_sparkline_scales_to_the_busiest_minute() -> None:
    svg = str(sparkline([0, 5, 10]))
    assert svg.count("<rect") == 2 and "15 jobs in the last hour" in svg
    assert "<rect" not in str(sparkline([0] * 60))


def test_replica_chart_marks_each_decision() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    decisions = [
        {"decided_at": now - timedelta(hours=2), "from_replicas": 0, "to_replicas": 3,
         "reason": "scale-up"},
        {"decided_at": now - timedelta(hours=1), "from_replicas": 3, "to_replicas": 1,
         "reason": "<scale-down>"},
    ]  # fmt: skip
    svg = str(replica_chart(decisions, now))
    assert svg.count("<circle") == 2 and "&lt;scale-down&gt;" in svg
    assert str(replica_chart([], now)) == ""


def test_ages_read_naturally() -> None:
    assert [age(s) for s in (None, 5, 300, 7200, 172800)] == ["-", "5 s", "5 min", "2.0 h", "2.0 d"]


def test_a_busy_minute_is_scaled_from_its_sample() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert minute_scale(10, 50, start, start + timedelta(seconds=59)) == 1.0
    # 50 jobs in its first 6 seconds: about 500 in the minute
    assert minute_scale(50, 50, start, start + timedelta(seconds=6)) == pytest.approx(10.0)
    assert minute_scale(50, 50, start, start) == 50.0


@pytest.mark.parametrize("name", ["q", "before", "limit"])
def test_digits_that_int_refuses_are_text_not_a_crash(name: str) -> None:
    # "²" is a digit to str.isdigit() but not a number to int(): a random run found it
    parse_filter({name: "²"})
    assert parse_job_id("²") is None
