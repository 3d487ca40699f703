"""Job-Queue: a PostgreSQL job queue with a Kubernetes autoscaler. This is the package users
import; `worker` and `controller` are internal.

    import jobqueue

    @jobqueue.task
    async def thumbnail(payload: Thumbnail, ctx: jobqueue.JobContext) -> dict: ...

    await thumbnail.enqueue(conn, Thumbnail(url="..."))

See docs/python.md. The command line (`jobqueue ...`) lives in this package too; importing it
loads none of the command line's modules.
"""

from jobqueue import guard

guard.check_or_exit()  # before anything imports `worker`: a shadowing worker.py is named

from typing import TYPE_CHECKING, Any  # noqa: E402

if TYPE_CHECKING:
    from jobqueue import testing
    from jobqueue.lifespan import running_worker, worker_lifespan
    from jobqueue.tasks import Task, enqueue, enqueue_many, task
    from worker.client import Client
    from worker.errors import InvalidJob, JobQueueError, MissingExtra, TaskConflict
    from worker.handlers.base import JobContext, PermanentError, registry
    from worker.handlers.payload import InvalidPayload
    from worker.handlers.snooze import Snooze
    from worker.job_checks import EnqueueOptions, PreparedJob

__version__ = "0.1.0"

__all__ = [
    "Client",
    "EnqueueOptions",
    "InvalidJob",
    "InvalidPayload",
    "JobContext",
    "JobQueueError",
    "MissingExtra",
    "PermanentError",
    "PreparedJob",
    "Snooze",
    "Task",
    "TaskConflict",
    "enqueue",
    "enqueue_many",
    "registry",
    "running_worker",
    "task",
    "testing",
    "worker_lifespan",
]

# Every name is loaded on first use. The `jobqueue` command is a container's PID 1, and a PID 1
# loses a SIGTERM that comes before it handles one: jobqueue.entry handles it first thing, but
# Python imports this package before it, so nothing here may take time (tests/unit/
# test_entry_imports.py). It also keeps the typed tasks and the client off `jobqueue worker`'s
# path (a pod's cold start) unless the user's task modules load them.
_LAZY = {
    "InvalidJob": ("worker.errors", "InvalidJob"),
    "JobQueueError": ("worker.errors", "JobQueueError"),
    "MissingExtra": ("worker.errors", "MissingExtra"),
    "TaskConflict": ("worker.errors", "TaskConflict"),
    "JobContext": ("worker.handlers.base", "JobContext"),
    "PermanentError": ("worker.handlers.base", "PermanentError"),
    "registry": ("worker.handlers.base", "registry"),
    "InvalidPayload": ("worker.handlers.payload", "InvalidPayload"),
    "Snooze": ("worker.handlers.snooze", "Snooze"),
    "EnqueueOptions": ("worker.job_checks", "EnqueueOptions"),
    "PreparedJob": ("worker.job_checks", "PreparedJob"),
    "task": ("jobqueue.tasks", "task"),
    "Task": ("jobqueue.tasks", "Task"),
    "enqueue": ("jobqueue.tasks", "enqueue"),
    "enqueue_many": ("jobqueue.tasks", "enqueue_many"),
    "Client": ("worker.client", "Client"),
    "testing": ("jobqueue.testing", None),
    "worker_lifespan": ("jobqueue.lifespan", "worker_lifespan"),
    "running_worker": ("jobqueue.lifespan", "running_worker"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'jobqueue' has no attribute {name!r}")
    from importlib import import_module

    module_name, attribute = _LAZY[name]
    module = import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
