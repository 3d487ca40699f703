"""Reading handler payloads: each helper checks one field and names it when it is wrong."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from worker.errors import field_path
from worker.handlers.base import PayloadCheck, PermanentError, registry
from worker.settings import HandlerLimits


class InvalidPayload(PermanentError):
    """A payload field is missing or wrong; retrying the same payload cannot help."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid payload field '{field}': {problem}")
        self.field = field
        self.problem = problem


@contextmanager
def nested(prefix: str) -> Iterator[None]:
    """Name fields of a nested object by their full path, e.g. `aggregations[0].op`."""
    try:
        yield
    except InvalidPayload as exc:
        raise InvalidPayload(f"{prefix}.{exc.field}", exc.problem) from None


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def require_str(payload: Mapping[str, Any], field: str, *, allow_empty: bool = False) -> str:
    if field not in payload or payload[field] is None:
        raise InvalidPayload(field, "is required")
    value = payload[field]
    if not isinstance(value, str):
        raise InvalidPayload(field, f"must be a string, got {_type_name(value)}")
    if not allow_empty and not value.strip():
        raise InvalidPayload(field, "must not be empty")
    return value


def optional_str(payload: Mapping[str, Any], field: str) -> str | None:
    if payload.get(field) is None:
        return None
    return require_str(payload, field)


def optional_int(
    payload: Mapping[str, Any], field: str, *, minimum: int, maximum: int
) -> int | None:
    value = payload.get(field)
    if value is None:
        return None
    # bool is an int subclass, but `true` as a width is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPayload(field, f"must be an integer, got {_type_name(value)}")
    if not minimum <= value <= maximum:
        raise InvalidPayload(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def optional_bool(payload: Mapping[str, Any], field: str, *, default: bool) -> bool:
    value = payload.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidPayload(field, f"must be true or false, got {_type_name(value)}")
    return value


def choice(
    payload: Mapping[str, Any], field: str, choices: Iterable[str], *, default: str | None
) -> str:
    allowed = list(choices)
    value = payload.get(field)
    if value is None:
        if default is None:
            raise InvalidPayload(field, f"is required (one of {', '.join(allowed)})")
        return default
    if not isinstance(value, str) or value.lower() not in allowed:
        raise InvalidPayload(field, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value.lower()


def str_list(payload: Mapping[str, Any], field: str, *, required: bool) -> list[str]:
    """A field given as one string or a list of strings; returns the list."""
    value = payload.get(field)
    if value is None:
        if required:
            raise InvalidPayload(field, "is required")
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        got = _type_name(value)
        raise InvalidPayload(field, f"must be a string or a list of strings, got {got}")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise InvalidPayload(f"{field}[{index}]", "must be a non-empty string")
    if required and not items:
        raise InvalidPayload(field, "must not be empty")
    return items


# --- payload models: checks the REST API and the CLI run at enqueue time, so that a payload
# the handler would refuse gets a 422 naming the field instead of a job that fails in the
# worker. They live in the registry, beside the handlers.


def pydantic_check(model: Any) -> PayloadCheck:
    """A payload check from a pydantic model, a dataclass or any type pydantic validates: the
    first error becomes an InvalidPayload naming the field's path."""
    adapter = TypeAdapter(model)

    def check(payload: Mapping[str, Any]) -> object:
        try:
            return adapter.validate_python(payload)
        except ValidationError as exc:
            raise invalid_payload(exc) from None

    return check


def invalid_payload(exc: ValidationError) -> InvalidPayload:
    first = exc.errors(include_input=False, include_url=False)[0]
    field = field_path(tuple(p for p in first["loc"] if isinstance(p, str | int))) or "payload"
    return InvalidPayload(field, first["msg"].removeprefix("Value error, "))


def payload_model(job_type: str, model: type[BaseModel] | None = None) -> Callable[[Any], Any]:
    """Declare what a job type's payload must look like; the API checks it on every POST.

    Either a pydantic model (`payload_model("resize", ResizePayload)`, or as a class
    decorator), or a function of the payload that raises `InvalidPayload` (as a decorator).
    The check must be pure and quick: no I/O, no settings; the worker's handler still owns
    what only it can see (files, the network). A typed task (`@jobqueue.task`) declares its
    model itself."""

    def declare(target: Any) -> Any:
        is_model = isinstance(target, type) and issubclass(target, BaseModel)
        registry.declare_payload(job_type, pydantic_check(target) if is_model else target)
        return target

    if model is not None:
        declare(model)
    return declare


def payload_check(job_type: str) -> PayloadCheck | None:
    return registry.payload_check(job_type)


# --- payload limits: checks that depend on the operator's settings (worker.settings.
# HandlerLimits), which the API runs at enqueue beside the payload model and the handler runs
# again in the worker, e.g. the image handler's pixel cap and the emails handler's recipients.

LimitCheck = Callable[[Mapping[str, Any], HandlerLimits], None]

_limit_checks: dict[str, LimitCheck] = {}


def payload_limits(job_type: str) -> Callable[[LimitCheck], LimitCheck]:
    """Declare a check of `job_type`'s payloads against the limits; it raises InvalidPayload.
    Like a payload model's, it must be pure and quick."""

    def declare(check: LimitCheck) -> LimitCheck:
        _limit_checks[job_type] = check
        return check

    return declare


def limit_check(job_type: str) -> LimitCheck | None:
    return _limit_checks.get(job_type)
