"""A `django.tasks` backend (DEP 14): Django's `@task` functions, enqueued into this queue in
Django's own transaction and run by `jobqueue worker`, with their results read back as
Django's `TaskResult`. See docs/django.md.

    TASKS = {"default": {"BACKEND": "jobqueue.django.JobQueueBackend"}}

Enqueueing runs jobqueue_enqueue() on the Django database connection named by
OPTIONS["DATABASE"] (default "default"), which must be the queue's database: inside
`transaction.atomic()` the job commits or rolls back with the rest of the request's writes,
and a worker is woken by the commit. Workers run the task with DJANGO_SETTINGS_MODULE set and
JOBQUEUE_HANDLER_MODULES=jobqueue.django, which sets Django up and registers the job type.

Django 6.0 ships the framework as `django.tasks`; on older Django the `django-tasks` package
provides the same API as `django_tasks`, and this backend works with either.
"""

from __future__ import annotations

import json
import traceback
from datetime import datetime
from typing import Any

import django
from django.apps import apps

if not apps.ready and not apps.loading:  # a worker process: Django is not set up yet
    django.setup()

try:  # Django 6.0
    from django.tasks import task_backends  # type: ignore[import-not-found]
    from django.tasks.backends.base import BaseTaskBackend  # type: ignore[import-not-found]
    from django.tasks.base import (  # type: ignore[import-not-found]
        Task,
        TaskContext,
        TaskError,
        TaskResult,
        TaskResultStatus,
    )
    from django.tasks.exceptions import TaskResultDoesNotExist  # type: ignore[import-not-found]
    from django.tasks.signals import (  # type: ignore[import-not-found]
        task_enqueued,
        task_finished,
        task_started,
    )
except ImportError:  # Django 5.2 with the django-tasks package
    from django_tasks import task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started

from django.db import close_old_connections, connections
from django.utils.module_loading import import_string

from worker.db import clients
from worker.errors import JobQueueError
from worker.handlers.base import JobContext, registry
from worker.job_checks import prepare_job

JOB_TYPE = "django_task"

# our statuses as Django's
STATUSES = {
    "pending": TaskResultStatus.READY,
    "blocked": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "completed": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}

_JOB_ROW = """
SELECT status::text, payload, result, created_at, started_at, finished_at, attempts,
       last_error, worker_id::text
FROM jobs WHERE id = %s AND job_type = %s
"""


class DjangoTaskFailed(JobQueueError):
    """What a worker records when a Django task raises: the exception's class path on the
    first line of the message, then its traceback, so get_result can rebuild a TaskError."""


def _module_path(value: Any) -> str:
    kind = value if isinstance(value, type) else type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


class JobQueueBackend(BaseTaskBackend):  # type: ignore[misc]
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.database = self.options.get("DATABASE", "default")
        self.max_tries = int(self.options.get("MAX_TRIES", 3))

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        payload = {
            "task": task.module_path,
            "args": json.loads(json.dumps(list(args))),
            "kwargs": json.loads(json.dumps(dict(kwargs))),
            "backend": self.alias,
        }
        job = prepare_job(
            JOB_TYPE,
            payload,
            {
                "queue_name": task.queue_name,
                "priority": task.priority,
                "run_at": task.run_after,
                "max_tries": self.max_tries,
            },
        )
        connection = connections[self.database]
        with connection.cursor() as cursor:
            try:
                cursor.execute(clients.psycopg_form("jobs_enqueue"), clients.sql_params(job))
            except Exception as exc:
                refused = clients.invalid_job(exc)
                if refused is None:
                    raise
                raise refused from exc
            (job_id,) = cursor.fetchone()
        result = self._result(task, str(job_id), "pending", payload, None, None)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        try:
            job_id = int(result_id)
        except ValueError:
            raise TaskResultDoesNotExist(result_id) from None
        with connections[self.database].cursor() as cursor:
            cursor.execute(_JOB_ROW, [job_id, JOB_TYPE])
            row = cursor.fetchone()
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        status, payload, value, created, started, finished, attempts, error, worker = row
        payload = json.loads(payload) if isinstance(payload, str) else payload
        value = json.loads(value) if isinstance(value, str) else value
        task = import_string(payload["task"])
        result = self._result(task, result_id, status, payload, created, value)
        times = {"started_at": started, "last_attempted_at": started, "finished_at": finished}
        for name, when in times.items():
            object.__setattr__(result, name, when)
        if worker:
            result.worker_ids.extend([worker] * max(attempts, 1))
        if error and STATUSES[status] is not TaskResultStatus.SUCCESSFUL:
            result.errors.append(_task_error(error))
        return result

    def _result(
        self,
        task: Task,
        result_id: str,
        status: str,
        payload: dict[str, Any],
        enqueued_at: datetime | None,
        value: Any,
    ) -> TaskResult:
        result = TaskResult(
            task=task,
            id=result_id,
            status=STATUSES[status],
            enqueued_at=enqueued_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=payload["args"],
            kwargs=payload["kwargs"],
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        object.__setattr__(result, "_return_value", value)
        return result


def _task_error(last_error: str) -> TaskError:
    """A job's last_error as Django's TaskError: ours carries the class path and traceback
    (DjangoTaskFailed); any other failure (a timeout, a lost lease) is named as it is."""
    text = last_error.split(": ", 1)[1] if last_error.startswith("DjangoTaskFailed: ") else ""
    if text:
        path, _, trace = text.partition("\n")
        return TaskError(exception_class_path=path, traceback=trace)
    return TaskError(exception_class_path=_module_path(JobQueueError), traceback=last_error)


def run_django_task(payload: dict[str, Any], ctx: JobContext) -> Any:
    """The worker's handler: a plain `def`, so the worker runs it in its thread pool, where
    Django's ORM may be used. Connections are handled as Django's request cycle does, and
    the task's signals are sent as Django's own backends send them."""
    close_old_connections()
    task: Task = import_string(payload["task"])
    result = task_backends[payload.get("backend", "default")].get_result(str(ctx.job_id))
    task_started.send(type(result.task.get_backend()), task_result=result)
    try:
        args, kwargs = payload["args"], payload["kwargs"]
        if task.takes_context:
            value = task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
    except Exception as exc:
        trace = "".join(traceback.format_exception(exc))
        raise DjangoTaskFailed(f"{_module_path(exc)}\n{trace}") from exc
    finally:
        close_old_connections()
    task_finished.send(type(result.task.get_backend()), task_result=result)
    return json.loads(json.dumps(value))


# Registered wherever the backend is imported; only workers run it.
registry.register(JOB_TYPE)(run_django_task)
