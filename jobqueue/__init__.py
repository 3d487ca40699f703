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

from worker.errors import InvalidJob, JobQueueError, MissingExtra, TaskConflict  # noqa: E402
from worker.handlers.base import JobContext, PermanentError, registry  # noqa: E402
from worker.handlers.payload import InvalidPayload  # noqa: E402
from worker.handlers.snooze import Snooze  # noqa: E402
from worker.job_checks import EnqueueOptions, PreparedJob  # noqa: E402

if TYPE_CHECKING:
    from jobqueue import testing
    from jobqueue.lifespan import running_worker, worker_lifespan
    from jobqueue.tasks import Task, enqueue, enqueue_many, task
    from worker.client import Client

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

# Loaded on first use: the typed tasks and the client (so that `jobqueue worker`, whose start
# is a pod's cold start, loads neither unless the user's task modules do), the test helpers
# and the embedded worker's runtime.
_LAZY = {
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
