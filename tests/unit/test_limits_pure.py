"""The CLI's limit and rate parsing: what users type, and what they get told when it is wrong."""

from __future__ import annotations

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from jobqueue.cli_limits import parse_limit, parse_rate
from worker.db.limits import MAX_LIMIT, RateLimit


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/60s", RateLimit(100, 60.0)),
        ("100/1m", RateLimit(100, 60.0)),
        ("5/s", RateLimit(5, 1.0)),
        ("10/500ms", RateLimit(10, 0.5)),
        ("1000 / 1h", RateLimit(1000, 3600.0)),
        ("7/2.5", RateLimit(7, 2.5)),
        ("3/1d", RateLimit(3, 86400.0)),
        ("none", None),
        ("OFF", None),
    ],
)
def test_rates_parse(text: str, rate: RateLimit | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text", ["100/0s", "0/60s", "100", "/60s", "1e3/s", "100/60x", "-1/s", "5/400d"]
)
def test_bad_rates_name_the_option(text: str) -> None:
    with pytest.raises(typer.BadParameter) as raised:
        parse_rate(text)
    assert raised.value.param_hint == "'--rate'"


@given(st.integers(min_value=-(2**40), max_value=2**40))
def test_limits_are_positive_32_bit_integers(value: int) -> None:
    if 1 <= value <= MAX_LIMIT:
        assert parse_limit(str(value), "'--concurrency'") == value
    else:
        with pytest.raises(typer.BadParameter):
            parse_limit(str(value), "'--concurrency'")
