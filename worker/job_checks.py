"""The rules of a new job, in one place: the enqueue options (`EnqueueOptions`, one definition
that the REST API's body, the Python client's parameters, typed tasks and the CLI all take),
and the checks types cannot express: one schedule (run_at or delay_seconds), what PostgreSQL
will store, and the payload size cap. Pure; every failure is an `InvalidJob` naming the field.

The SQL function jobqueue_enqueue() applies the same rules to callers that reach the table
only through SQL; tests/integration/test_job_rules.py keeps the two in agreement."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from worker.errors import InvalidJob, Loc

MAX_JSON_DEPTH = 64
# PostgreSQL `integer` columns (priority, max_tries) and the bounds of the other fields; the
# SQL function checks the same numbers.
INT32_MAX = 2**31 - 1
MAX_NAME_CHARS = 200  # job_type (queue names: QUEUE_NAME_MAX)
MAX_KEY_CHARS = 255  # idempotency_key, unique_key, concurrency_key
MAX_TRIES = 1000
MAX_DELAY_SECONDS = 10 * 365 * 24 * 3600.0
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_DEPENDENCIES = 10_000
MAX_PAYLOAD_BYTES = 256 * 1024  # the SQL function's cap; the API's is a setting
EARLIEST_RUN_AT = datetime(1970, 1, 1, tzinfo=UTC)

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


# A queue a job, a schedule or a request creates or addresses (a job's queue_name, a
# schedule's, /queues/{name}): the error names the field and says what a name may hold. List
# filters take any text, so that a queue made before names were checked can still be listed.
QueueName = Annotated[
    str,
    Field(min_length=1, max_length=QUEUE_NAME_MAX),
    AfterValidator(check_queue_name),
]


def check_schedule(run_at: datetime | None, delay_seconds: float | None) -> None:
    """A job runs not before run_at, or not before now plus delay_seconds: one, not both."""
    if run_at is not None and delay_seconds is not None:
        raise ValueError("give run_at or delay_seconds, not both")


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
            raise InvalidJob(here[: len(loc)], f"nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            problem = _storable_text(item)
            if problem:
                raise InvalidJob(here, f"string {problem}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidJob(here, "numbers must be finite")
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _storable_text(key)
                if problem:
                    raise InvalidJob(here, f"key {problem}")
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
        raise InvalidJob(loc, "is not storable as JSON") from None
    if "\\u0000" in text or text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        check_storable_json(payload, loc)  # may be a false alarm: a literal backslash-u0000
    if size > max_bytes:
        raise InvalidJob(
            loc,
            f"payload is {size} bytes as JSON; the limit is {max_bytes} bytes "
            "(JOBQUEUE_API_MAX_PAYLOAD_BYTES)",
            kind="payload_too_large",
        )
    return text  # what is inserted: each payload is serialised once


def check_disabled_type(job_type: str, loc: Loc, disabled: Sequence[str]) -> None:
    if job_type in disabled:
        raise InvalidJob(
            loc,
            f"job_type {job_type!r} is disabled on this system (JOBQUEUE_DISABLED_HANDLERS)",
            kind="disabled_job_type",
        )


def check_job_type(
    job_type: str,
    loc: Loc,
    known: Sequence[str],
    allow_unknown: bool,
    missing_extras: dict[str, str] | None = None,
) -> None:
    if allow_unknown or job_type in known:
        return
    extra = (missing_extras or {}).get(job_type)
    if extra is not None:
        raise InvalidJob(
            loc,
            f"job_type {job_type!r} is a built-in handler that needs the '{extra}' extra: "
            f"pip install 'job-queue[{extra}]'",
            kind="unknown_job_type",
        )
    listed = ", ".join(known) if known else "(none registered)"
    raise InvalidJob(
        loc,
        f"unknown job_type {job_type!r}; known types: {listed}. "
        "Set JOBQUEUE_ALLOW_UNKNOWN_JOB_TYPES=true for types that workers register themselves.",
        kind="unknown_job_type",
    )


# --- the enqueue options: one definition -------------------------------------------------


def no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL characters.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _aware_and_in_range(value: datetime) -> datetime:
    """A time without a zone is UTC (as in JSON bodies, and as asyncpg sends it)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc
    if value < EARLIEST_RUN_AT:
        raise ValueError("must not be before 1970-01-01")
    return value


Name = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_CHARS), AfterValidator(no_nul)
]  # job_type, a batch ref
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS), AfterValidator(no_nul)]
JobId = Annotated[int, Field(ge=1, le=2**63 - 1)]
RunAt = Annotated[datetime, AfterValidator(_aware_and_in_range)]


class EnqueueOptions(BaseModel):
    """How a job is enqueued, besides its type and payload. The one definition of these
    options: `POST /jobs` takes them (worker.api.models.JobIn extends this model), and so do
    `jobqueue.enqueue(...)`, a typed task's `.enqueue(...)` and `jobqueue enqueue`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    queue_name: QueueName = Field(default="default", description="The queue to put it on.")
    priority: int = Field(default=0, ge=-INT32_MAX, le=INT32_MAX, description="Higher runs first.")
    run_at: RunAt | None = Field(
        default=None, description="Not before this time (UTC when no offset is given)."
    )
    delay_seconds: float | None = Field(
        default=None, ge=0, le=MAX_DELAY_SECONDS, description="Not before now plus this delay."
    )
    max_tries: int = Field(default=3, ge=1, le=MAX_TRIES, description="Attempts before it fails.")
    idempotency_key: Key | None = Field(
        default=None,
        description="A second job with the same key is not created; the first one is returned.",
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=MAX_TIMEOUT_SECONDS, description="Per-attempt time limit."
    )
    unique_key: Key | None = Field(
        default=None,
        description="At most one pending or running job per key: a duplicate gets the active "
        "job back; once it finishes, the key is free again.",
    )
    concurrency_key: Key | None = Field(
        default=None, description="Held by the queue's key_concurrency_limit, e.g. a tenant id."
    )
    depends_on: list[JobId] | None = Field(
        default=None,
        max_length=MAX_DEPENDENCIES,
        description="Job ids this job waits for (docs/workflows.md).",
    )
    run_on_failure: bool = Field(
        default=False, description="Run even when a dependency failed or was cancelled."
    )

    @model_validator(mode="after")
    def _one_schedule(self) -> EnqueueOptions:
        check_schedule(self.run_at, self.delay_seconds)
        return self


OPTION_NAMES = tuple(EnqueueOptions.model_fields)


def invalid_from(exc: ValidationError, prefix: Loc = ()) -> InvalidJob:
    """pydantic's first error as an InvalidJob naming the field."""
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = tuple(part for part in first["loc"] if isinstance(part, str | int))
    message = first["msg"].removeprefix("Value error, ")
    if not loc and "run_at" in message:  # the one-schedule rule, which SQL names run_at too
        loc = ("run_at",)
    if first["type"] == "extra_forbidden":
        known = ", ".join(OPTION_NAMES)
        message = f"is not an enqueue option (the options: {known})"
    return InvalidJob((*prefix, *loc), message)


def enqueue_options(options: dict[str, Any]) -> EnqueueOptions:
    """The options as given to a Python call, checked; InvalidJob names the first bad one."""
    try:
        return EnqueueOptions.model_validate(options)
    except ValidationError as exc:
        raise invalid_from(exc) from None


def check_job_type_name(job_type: object) -> str:
    if not isinstance(job_type, str) or not 1 <= len(job_type) <= MAX_NAME_CHARS:
        raise InvalidJob("job_type", f"must be 1 to {MAX_NAME_CHARS} characters")
    if "\x00" in job_type:
        raise InvalidJob("job_type", "must not contain NUL characters")
    return job_type


class EnqueueOptionsDict(TypedDict, total=False):
    """EnqueueOptions as keyword arguments, for type checkers (`**options:
    Unpack[EnqueueOptionsDict]`). tests/unit/test_job_rules.py keeps it equal to the model,
    which is what checks them at run time."""

    queue_name: str
    priority: int
    run_at: datetime | None
    delay_seconds: float | None
    max_tries: int
    idempotency_key: str | None
    timeout_seconds: float | None
    unique_key: str | None
    concurrency_key: str | None
    depends_on: Sequence[int] | None
    run_on_failure: bool


@dataclass(frozen=True)
class PreparedJob:
    """A new job that passed the rules: its type, its payload (and the JSON text that was
    measured), and its options. What every client hands to the data layer."""

    job_type: str
    payload: dict[str, Any]
    payload_json: str
    options: EnqueueOptions

    def sql_fields(self) -> dict[str, Any]:
        """jobqueue_enqueue()'s parameters, by name."""
        fields = self.options.model_dump()
        fields.update(job_type=self.job_type, payload=self.payload_json)
        return fields


def prepare_job(
    job_type: object,
    payload: object,
    options: dict[str, Any] | EnqueueOptions,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> PreparedJob:
    """A new job from a Python caller, checked: InvalidJob names the first field wrong."""
    name = check_job_type_name(job_type)
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidJob("payload", f"must be a JSON object (a dict), got {type(payload).__name__}")
    text = check_payload(payload, ("payload",), max_payload_bytes)
    checked = options if isinstance(options, EnqueueOptions) else enqueue_options(options)
    return PreparedJob(name, payload, text, checked)
