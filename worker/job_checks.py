"""Checks on a new job's input that types cannot express: one schedule (run_at or
delay_seconds), what PostgreSQL will store, the payload size cap, and the known job types.
Pure functions, shared by the API (worker/api) and the CLI (jobqueue/cli_jobs.py); each failure
names the field."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

Loc = tuple[str | int, ...]

MAX_JSON_DEPTH = 64

# Queue names go in URLs (/queues/{name}/pause, the console's forms) and in settings
# (WORKER_QUEUES, a comma-separated list), so they keep to a set that needs no escaping there.
QUEUE_NAME_MAX = 128
QUEUE_NAME_RULE = (
    f"1 to {QUEUE_NAME_MAX} letters, digits, '_', '-', '.' or ':', "
    "starting with a letter or a digit"
)
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


def queue_name_problem(name: str) -> str | None:
    """Why `name` cannot name a queue, or None."""
    if len(name) <= QUEUE_NAME_MAX and _QUEUE_NAME.fullmatch(name):
        return None
    return f"must be {QUEUE_NAME_RULE}; got {name[: QUEUE_NAME_MAX + 1]!r}"


def check_queue_name(name: str) -> str:
    """A pydantic validator: the name, or ValueError saying what a name may hold."""
    problem = queue_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def check_schedule(run_at: datetime | None, delay_seconds: float | None) -> None:
    """A job runs not before run_at, or not before now plus delay_seconds: one, not both."""
    if run_at is not None and delay_seconds is not None:
        raise ValueError("give run_at or delay_seconds, not both")


class InputError(Exception):
    """Input refused, naming the field: the API renders it like FastAPI's validation errors
    with its status_code, the CLI as one line."""

    def __init__(self, status_code: int, loc: Loc, msg: str, kind: str) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.loc = loc
        self.msg = msg
        self.kind = kind

    def as_detail(self) -> list[dict[str, Any]]:
        return [{"loc": list(self.loc), "msg": self.msg, "type": self.kind}]


def _storable_text(text: str) -> str | None:
    """Why PostgreSQL would reject this string, or None."""
    if "\x00" in text:
        return "must not contain NUL characters (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain unpaired UTF-16 surrogates"
    return None


def check_storable_json(value: Any, loc: Loc) -> None:
    """jsonb refuses NUL characters, lone surrogates and non-finite numbers, anywhere; and
    nesting past MAX_JSON_DEPTH could not be serialized back in responses."""
    stack: list[tuple[Any, Loc]] = [(value, loc)]
    while stack:  # iterative: deeply nested input must not exhaust the Python stack
        item, here = stack.pop()
        if len(here) - len(loc) > MAX_JSON_DEPTH:
            raise InputError(
                422, here[: len(loc)], f"nests deeper than {MAX_JSON_DEPTH} levels", "value_error"
            )
        if isinstance(item, str):
            problem = _storable_text(item)
            if problem:
                raise InputError(422, here, f"string {problem}", "value_error")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InputError(422, here, "numbers must be finite", "value_error")
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _storable_text(key)
                if problem:
                    raise InputError(422, here, f"key {problem}", "value_error")
                stack.append((child, (*here, key)))
        elif isinstance(item, list):
            stack.extend((child, (*here, index)) for index, child in enumerate(item))


def _compact_encoder() -> Callable[[Any], str]:
    """JSON text without spaces, NaN or Infinity: one encoder for every payload.

    JSONEncoder.encode builds its C encoder anew on each call, which costs more than encoding
    a small payload, so the C encoder is built once here (where the interpreter has one).
    It skips the circular-reference check: payloads are parsed from JSON text, which cannot
    hold a cycle, and a cycle from Python code still ends in an error (RecursionError)."""
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    try:
        encode = make(
            None,  # markers: no cycle check
            encoder.default,
            json.encoder.encode_basestring,  # as ensure_ascii=False picks
            None,  # indent
            ":",  # key separator
            ",",  # item separator
            False,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
    except TypeError:  # a C encoder with another signature
        return encoder.encode
    join = "".join
    return lambda value: join(encode(value, 0))


_compact_json = _compact_encoder()


def check_payload(payload: dict[str, Any], loc: Loc, max_bytes: int) -> str:
    """The payload as JSON text, once it is known to be storable and within the cap.

    Serializing in C is the fast path: it refuses NaN and Infinity, encoding refuses lone
    surrogates, and a NUL can only show up as the escape \\u0000. Only a payload that may hold
    a problem is walked in Python, to name where it is."""
    try:
        text = _compact_json(payload)
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except (ValueError, UnicodeEncodeError, RecursionError):
        check_storable_json(payload, loc)
        raise InputError(422, loc, "is not storable as JSON", "value_error") from None
    if "\\u0000" in text or text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        check_storable_json(payload, loc)  # may be a false alarm: a literal backslash-u0000
    if size > max_bytes:
        raise InputError(
            413,
            loc,
            f"payload is {size} bytes as JSON; the limit is {max_bytes} bytes "
            "(JOBQUEUE_API_MAX_PAYLOAD_BYTES)",
            "payload_too_large",
        )
    return text  # what is inserted: each payload is serialised once


def known_job_types(handler_modules: list[str], disabled: Sequence[str] = ()) -> list[str]:
    """The built-in handlers plus the user's JOBQUEUE_HANDLER_MODULES, as workers load them,
    less those JOBQUEUE_DISABLED_HANDLERS names (UnknownDisabledHandler for a name no
    handler has)."""
    from worker.handlers import registry  # the handlers' own imports, only when asked

    registry.load_modules(handler_modules)
    return registry.without(list(disabled)).job_types()


def check_disabled_type(job_type: str, loc: Loc, disabled: Sequence[str]) -> None:
    if job_type in disabled:
        raise InputError(
            422,
            loc,
            f"job_type {job_type!r} is disabled on this system (JOBQUEUE_DISABLED_HANDLERS)",
            "disabled_job_type",
        )


def check_job_type(job_type: str, loc: Loc, known: Sequence[str], allow_unknown: bool) -> None:
    if allow_unknown or job_type in known:
        return
    listed = ", ".join(known) if known else "(none registered)"
    raise InputError(
        422,
        loc,
        f"unknown job_type {job_type!r}; known types: {listed}. "
        "Set JOBQUEUE_ALLOW_UNKNOWN_JOB_TYPES=true for types that workers register themselves.",
        "unknown_job_type",
    )
