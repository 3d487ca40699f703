"""Typed tasks: `@jobqueue.task` declares one from a function whose payload is a pydantic model,
a dataclass or a TypedDict; the function gets the model, and the task enqueues itself.

    class Thumbnail(BaseModel):
        url: str
        width: int = Field(128, gt=0)

    @jobqueue.task(queue_name="images")
    async def thumbnail(payload: Thumbnail, ctx: jobqueue.JobContext) -> dict: ...

    await thumbnail.enqueue(conn, Thumbnail(url="..."), priority=5)

One declaration serves every path: the worker runs the function with the payload validated
into the model (a payload that fails it fails the job at once, naming the field); the REST API
and `jobqueue enqueue` refuse such a payload at enqueue time with the same model, since the
task registers it as its job type's payload check; and `enqueue` refuses it before anything is
sent. Plain `def` functions are tasks too (the worker runs them off its event loop).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar, Unpack, get_type_hints, is_typeddict

from pydantic import BaseModel, TypeAdapter, ValidationError

from worker.client import Client, with_option_parameters
from worker.db import clients
from worker.handlers.admission import check_payload_model
from worker.handlers.base import (
    HandlerRegistry,
    HandlerSpec,
    JobContext,
    is_async_handler,
    registry,
)
from worker.handlers.payload import invalid_payload
from worker.job_checks import (
    EnqueueOptionsDict,
    PreparedJob,
    enqueue_options,
    invalid_from,
    prepare_job,
)

P = TypeVar("P")
R = TypeVar("R")

# Set by jobqueue.testing.eager(): runs each enqueued job in-process instead of storing it.
EagerRunner = Callable[[PreparedJob], Awaitable[int]]
eager_runner: EagerRunner | None = None


def _payload_type(annotation: Any) -> Any | None:
    """The annotation, when it is a type pydantic validates into an object; None for a plain
    dict (or no annotation), which the function then gets as it is."""
    if annotation is None or annotation is inspect.Parameter.empty or annotation is Any:
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if dataclasses.is_dataclass(annotation) or is_typeddict(annotation):
        return annotation
    origin = getattr(annotation, "__origin__", annotation)
    if origin is dict or (isinstance(origin, type) and issubclass(origin, dict)):
        return None
    raise TypeError(
        f"a task's payload must be a pydantic model, a dataclass, a TypedDict or a dict; "
        f"got {annotation!r}"
    )


def _call_shape(function: Callable[..., Any], hints: dict[str, Any]) -> tuple[str, ...]:
    """What each positional parameter gets, in order: 'payload' and/or 'ctx'. A parameter
    annotated JobContext gets the context; otherwise the first is the payload and the second
    the context, as in `(payload, ctx)`."""
    shape: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            if parameter.default is parameter.empty and parameter.kind is parameter.KEYWORD_ONLY:
                raise TypeError(f"{function.__qualname__}: a task takes (payload, ctx) only")
            continue
        if hints.get(parameter.name) is JobContext:
            shape.append("ctx")
        elif "payload" not in shape:
            shape.append("payload")
        else:
            shape.append("ctx")
    if len(shape) > 2 or len(set(shape)) != len(shape):
        raise TypeError(f"{function.__qualname__}: a task takes (payload, ctx), (payload) or ()")
    return tuple(shape)


def _jsonable(result: Any) -> Any:
    """A model or dataclass a task returns, as the JSON the job's result stores."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return TypeAdapter(type(result)).dump_python(result, mode="json")
    return result


def origin_of(function: Callable[..., Any]) -> str:
    code = getattr(function, "__code__", None)
    if code is None:
        return repr(function)
    return f"{code.co_filename}:{code.co_firstlineno}"


def _describe(spec: HandlerSpec) -> str:
    return spec.origin or f"{origin_of(spec.handler)} (registry.register)"


class Task(Generic[P, R]):
    """A declared task: call it to run the function directly; `enqueue` to queue it."""

    def __init__(
        self,
        function: Callable[..., R],
        *,
        name: str,
        payload: Any | None,
        timeout_seconds: float | None,
        defaults: dict[str, Any],
        registry: HandlerRegistry,
    ) -> None:
        self.function = function
        self.name = name
        try:
            hints = get_type_hints(function)
        except Exception:  # a forward reference that cannot be resolved: no hints
            hints = {}
        self._shape = _call_shape(function, hints)
        if payload is None and "payload" in self._shape:
            parameter = list(inspect.signature(function).parameters)[self._shape.index("payload")]
            payload = _payload_type(hints.get(parameter))
        elif payload is not None:
            _payload_type(payload)
        self.payload_type = payload
        self._adapter = TypeAdapter(payload) if payload is not None else None
        self.defaults = enqueue_options(defaults).model_dump(exclude_unset=True)
        self.is_async = is_async_handler(function)
        self.origin = origin_of(function)
        check = self._check if self._adapter is not None else None
        spec = HandlerSpec(self._handler(), timeout_seconds, self.origin)
        registry.add_task(name, spec, check, _describe)
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __repr__(self) -> str:
        return f"<task {self.name!r} at {self.origin}>"

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.function(*args, **kwargs)

    # --- the payload both ways
    def _check(self, payload: Any) -> object:
        assert self._adapter is not None
        try:
            return self._adapter.validate_python(payload)
        except ValidationError as exc:
            raise invalid_payload(exc) from None

    def dump(self, payload: P | dict[str, Any] | None) -> dict[str, Any]:
        """The payload as the JSON object a job stores; InvalidJob names a field that fails
        the model."""
        if self._adapter is None:
            return {} if payload is None else payload  # type: ignore[return-value]
        try:
            value = self._adapter.validate_python({} if payload is None else payload)
            data = self._adapter.dump_python(value, mode="json")
        except ValidationError as exc:
            raise invalid_from(exc, ("payload",)) from None
        return data  # type: ignore[no-any-return]

    def _arguments(self, payload: dict[str, Any], ctx: JobContext) -> list[Any]:
        value = self._check(payload) if self._adapter is not None else payload
        return [value if part == "payload" else ctx for part in self._shape]

    def _handler(self) -> Any:
        function = self.function
        if self.is_async:

            async def handle(payload: dict[str, Any], ctx: JobContext) -> Any:
                __tracebackhide__ = True  # a failure's traceback starts at the user's function
                result: Any = function(*self._arguments(payload, ctx))
                return _jsonable(await result)

        else:

            def handle(payload: dict[str, Any], ctx: JobContext) -> Any:  # type: ignore[misc]
                __tracebackhide__ = True
                return _jsonable(function(*self._arguments(payload, ctx)))

        handle.__qualname__ = f"task {self.name}"
        return handle

    # --- enqueueing
    def prepare(
        self, payload: P | dict[str, Any] | None = None, **options: Unpack[EnqueueOptionsDict]
    ) -> PreparedJob:
        """A checked job of this task, for `enqueue_many` (the task's defaults, then these)."""
        return prepare_job(self.name, self.dump(payload), {**self.defaults, **options})

    async def enqueue(
        self,
        conn: Any,
        payload: P | dict[str, Any] | None = None,
        **options: Unpack[EnqueueOptionsDict],
    ) -> int:
        """Enqueue one job on the caller's connection (asyncpg, psycopg 3 or SQLAlchemy
        async), inside its transaction; returns the job's id."""
        return await submit(conn, self.prepare(payload, **options))

    async def enqueue_many(
        self,
        conn: Any,
        payloads: Iterable[P | dict[str, Any] | PreparedJob],
        **options: Unpack[EnqueueOptionsDict],
    ) -> list[int]:
        """Enqueue one job per payload in one statement, in order; each item is a payload
        (with these options) or a job made by `prepare` (with its own)."""
        jobs = [
            item if isinstance(item, PreparedJob) else self.prepare(item, **options)
            for item in payloads
        ]
        return await submit_many(conn, jobs)


def task(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    payload: Any | None = None,
    registry: HandlerRegistry = registry,
    **defaults: Unpack[EnqueueOptionsDict],
) -> Any:
    """Declare a task, as `@task` or `@task(name=..., queue_name=..., max_tries=...)`.

    - `name`: the job type (default: the function's name); two tasks with one name are an
      error at import that names both places.
    - `payload`: the payload's type, when the first parameter's annotation does not say it.
    - `timeout_seconds`: how long one attempt may run (the handler's timeout; a job
      enqueued with its own `timeout_seconds` keeps that).
    - any other enqueue option (`queue_name`, `priority`, `max_tries`, ...): its default for
      this task's jobs; `enqueue(..., **options)` overrides it."""

    def declare(target: Callable[..., Any]) -> Task[Any, Any]:
        options: dict[str, Any] = dict(defaults)
        return Task(
            target,
            name=name or target.__name__,
            payload=payload,
            timeout_seconds=options.pop("timeout_seconds", None),
            defaults=options,
            registry=registry,
        )

    return declare(function) if function is not None else declare


# --- enqueueing by job type, and the one way out to the database


async def enqueue(
    conn: Any,
    job_type: str | Task[Any, Any],
    payload: Any = None,
    **options: Unpack[EnqueueOptionsDict],
) -> int:
    """Enqueue a job of a task, or of any job type by name, on the caller's connection; its
    id. A job type whose task (or payload model) is known here is checked against it."""
    if isinstance(job_type, Task):
        return await job_type.enqueue(conn, payload, **options)
    if isinstance(job_type, str) and isinstance(payload, dict):
        check_payload_model(job_type, payload)
    return await submit(conn, prepare_job(job_type, payload, dict(options)))


async def enqueue_many(conn: Any, jobs: Iterable[PreparedJob]) -> list[int]:
    """Enqueue jobs made by `task.prepare(...)`, of one task or several, in one statement."""
    return await submit_many(conn, list(jobs))


def _connection(conn: Any) -> Any:
    """A jobqueue.Client stands for its pool (its own transaction per call)."""
    return conn.pool if isinstance(conn, Client) else conn


# help() and inspect show every option by name, with its default, from EnqueueOptions (a
# task's own methods are left alone: their defaults are the task's)
with_option_parameters(enqueue)


async def submit(conn: Any, job: PreparedJob) -> int:
    if eager_runner is not None:
        return await eager_runner(job)
    return await clients.enqueue(_connection(conn), job)


async def submit_many(conn: Any, jobs: list[PreparedJob]) -> list[int]:
    if eager_runner is not None:
        return [await eager_runner(job) for job in jobs]
    return await clients.enqueue_many(_connection(conn), jobs)
