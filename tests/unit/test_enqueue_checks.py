"""The enqueue path's quick checks agree with the thorough ones they stand in for: the API's
emails check with the handler's own reading of the payload, the compact encoder with
json.dumps, and a payload the encoder cannot take still gets an error naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.errors import InvalidJob
from worker.handlers.emails import check_email, read_email
from worker.handlers.payload import InvalidPayload, payload_check
from worker.job_checks import _compact_json, check_payload

ABSENT = object()

# Field values chosen to hit every branch of read_email: good and bad addresses (named,
# several in one string, undotted domains, line breaks), blanks, wrong types and empty lists.
ADDRESSES = [
    "ann@example.com",
    "Ann Example <ann@example.com>",
    "bob@example.org",
    "ann@gmail",
    "ann@",
    "not an address",
    "a@b.com, c@d.com",
    "a@example.com\r\nBcc: x@evil.com",
    "",
    "  ",
    "@x.com",
]
ADDRESS_FIELD = st.one_of(
    st.just(ABSENT),
    st.none(),
    st.sampled_from(ADDRESSES),
    st.lists(st.one_of(st.sampled_from(ADDRESSES), st.integers(), st.none()), max_size=3),
    st.sampled_from([5, {"a": 1}, True]),
)
TEXT_FIELD = st.one_of(
    st.just(ABSENT),
    st.none(),
    st.sampled_from(["Hi", "", "  ", "a\r\nBcc: x@evil.com", "line\nbreak", "résumé"]),
    st.sampled_from([3, ["b"], False]),
)


def verdict(check: Any, payload: dict[str, Any]) -> tuple[str, str] | None:
    try:
        check(payload)
    except InvalidPayload as exc:
        return exc.field, exc.problem
    return None


def or_good(good: Any, field: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Half the time the field is good, so that a payload is often wrong in one field only:
    the case where a quick check that forgot a rule would accept it."""
    return st.one_of(st.just(good), field)


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(
    to=or_good("ann@example.com", ADDRESS_FIELD),
    cc=or_good(ABSENT, ADDRESS_FIELD),
    bcc=or_good(ABSENT, ADDRESS_FIELD),
    reply_to=or_good(ABSENT, ADDRESS_FIELD),
    subject=or_good("Hi", TEXT_FIELD),
    body=or_good("Hello", TEXT_FIELD),
    html=or_good(ABSENT, TEXT_FIELD),
)
def test_the_api_check_of_emails_says_what_the_handler_says(**fields: Any) -> None:
    payload = {name: value for name, value in fields.items() if value is not ABSENT}
    assert verdict(check_email, payload) == verdict(read_email, payload)


GOOD_EMAIL = {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}
ADDRESS_VALUES = [None, *ADDRESSES, [], ["ann@example.com", "bob@example.org"], 5, {"a": 1}]
ADDRESS_VALUES += [[item] for item in [*ADDRESSES, 5, None]]
TEXT_VALUES = [None, "Hi", "", "  ", "a\r\nBcc: x@evil.com", "line\nbreak", "cr\ronly", 3, ["b"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f in ("to", "cc", "bcc", "reply_to") for v in ADDRESS_VALUES]
    + [(f, v) for f in ("subject", "body", "html") for v in TEXT_VALUES],
)
def test_one_field_changed_the_two_checks_agree(field: str, value: Any) -> None:
    payload = {**GOOD_EMAIL, field: value}
    assert verdict(check_email, payload) == verdict(read_email, payload)


def test_the_api_checks_emails_with_the_quick_check() -> None:
    assert payload_check("emails") is check_email
    assert check_email({"to": "ann@example.com", "subject": "Hi", "body": "Hello"}) is None


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"to": "user@example.com", "subject": "Hi", "body": "Hello", "n": 1},
        {"é": "résumé ✓ 𝄞", "nested": {"list": [1, 2.5, -0.0, 1e300, None, True, False]}},
        {"escapes": 'quote " backslash \\ tab \t newline \n bell \x07', "big": 2**70},
        {"deep": [[[[{"a": [{}]}]]]]},
    ],
)
def test_the_compact_encoder_writes_what_json_dumps_writes(value: dict[str, Any]) -> None:
    expected = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert _compact_json(value) == expected


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_the_compact_encoder_refuses_non_finite_numbers(number: float) -> None:
    with pytest.raises(ValueError):
        _compact_json({"x": number})


def test_a_payload_that_refers_to_itself_is_an_input_error() -> None:
    # Only Python callers can build one (JSON text cannot); the encoder does not look for
    # cycles, so it must still end in an error naming the payload, not a crash.
    payload: dict[str, Any] = {"a": []}
    payload["a"].append(payload)
    with pytest.raises(InvalidJob) as caught:
        check_payload(payload, ("body", "payload"), 1024)
    assert caught.value.loc == ("body", "payload")
