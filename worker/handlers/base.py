"""What a handler is: an async function of (payload, context) that returns a JSON result."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from worker.settings import Settings


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (bad input): the job fails at once."""


@dataclass(frozen=True)
class JobContext:
    job_id: int
    job_type: str
    queue_name: str
    attempt: int
    max_tries: int
    settings: Settings
    worker_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # --- progress (docs/workflows.md): where ctx.progress() reports go; None outside a worker
    progress_sink: ProgressSink | None = field(default=None, repr=False, compare=False)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the job is, 0..1, with an optional message. Cheap, and safe from a
        thread: the worker stores the latest report at most once per second."""
        if self.progress_sink is not None:
            self.progress_sink(fraction, message)


ProgressSink = Callable[[float, "str | None"], None]


JSONResult = dict[str, Any] | list[Any] | str | int | float | bool | None
Handler = Callable[[dict[str, Any], JobContext], Awaitable[JSONResult]]
HandlerT = TypeVar("HandlerT", bound=Handler)  # keeps a decorated function's own type


@dataclass(frozen=True)
class HandlerSpec:
    handler: Handler
    timeout_seconds: float | None = None


class HandlerRegistry:
    """Handlers keyed by job_type."""

    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self, job_type: str, *, timeout_seconds: float | None = None
    ) -> Callable[[HandlerT], HandlerT]:
        """Decorator; a later registration of the same job_type replaces the earlier one."""

        def decorate(handler: HandlerT) -> HandlerT:
            self._specs[job_type] = HandlerSpec(handler, timeout_seconds)
            return handler

        return decorate

    def get(self, job_type: str) -> HandlerSpec | None:
        return self._specs.get(job_type)

    def unregister(self, job_type: str) -> None:
        self._specs.pop(job_type, None)

    def job_types(self) -> list[str]:
        return sorted(self._specs)

    def load_modules(self, module_names: list[str]) -> None:
        """Import users' modules; they register on import with `@registry.register(...)`."""
        for name in module_names:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ImportError(
                    f"JOBQUEUE_HANDLER_MODULES names {name!r}, which cannot be imported: {exc}"
                ) from exc


registry = HandlerRegistry()
