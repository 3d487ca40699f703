"""Job handlers: the registry, and the built-ins, which register themselves on import.

Users add their own handlers in modules named by JOBQUEUE_HANDLER_MODULES; see
docs/handlers.md.
"""

from worker.handlers import emails, images_processing, noop, report_generation
from worker.handlers.base import (
    Handler,
    HandlerRegistry,
    HandlerSpec,
    JobContext,
    JSONResult,
    PermanentError,
    registry,
)
from worker.handlers.snooze import Snooze

BUILTIN_MODULES = (emails, images_processing, noop, report_generation)

__all__ = [
    "Handler",
    "HandlerRegistry",
    "HandlerSpec",
    "JSONResult",
    "JobContext",
    "PermanentError",
    "Snooze",
    "registry",
]
