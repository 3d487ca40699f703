"""Job handlers: the registry, and the built-ins, which register themselves on import.

The email and image handlers need the `handlers` extra (aiosmtplib, Pillow); without it they
are left out, and the registry remembers which extra would bring them, so that enqueueing one
is refused with a message naming it. Users add their own handlers with `@jobqueue.task` in
modules named by JOBQUEUE_HANDLER_MODULES; see docs/python.md and docs/handlers.md.
"""

from collections.abc import Sequence
from importlib import import_module
from importlib.util import find_spec

from worker.handlers import noop, report_generation
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

# built-in job type -> (its module, the third-party module it needs, the extra that has it)
OPTIONAL_BUILTINS = {
    "emails": ("worker.handlers.emails", "aiosmtplib", "handlers"),
    "images_processing": ("worker.handlers.images_processing", "PIL", "handlers"),
}
for _job_type, (_module, _needs, _extra) in OPTIONAL_BUILTINS.items():
    if find_spec(_needs) is None:
        registry.missing_extras[_job_type] = _extra
    else:
        import_module(_module)

BUILTIN_MODULES = (noop, report_generation)


def known_job_types(handler_modules: list[str], disabled: Sequence[str] = ()) -> list[str]:
    """The built-in handlers plus the user's JOBQUEUE_HANDLER_MODULES, as workers load them,
    less those JOBQUEUE_DISABLED_HANDLERS names (UnknownDisabledHandler for a name no
    handler has)."""
    registry.load_modules(handler_modules)
    return registry.without(list(disabled)).job_types()


__all__ = [
    "Handler",
    "HandlerRegistry",
    "HandlerSpec",
    "JSONResult",
    "JobContext",
    "PermanentError",
    "Snooze",
    "known_job_types",
    "registry",
]
