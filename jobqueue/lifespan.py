"""A worker inside your own async application: FastAPI's (or any ASGI app's) lifespan.

    app = FastAPI(lifespan=jobqueue.worker_lifespan(dsn, queues=["default"], concurrency=4))

The worker starts with the app and, when the server shuts down (SIGTERM, Ctrl-C), drains
before the app's shutdown completes: it stops claiming, lets running jobs finish within
`drain_timeout` seconds (interrupting the rest, which go back to pending), writes every
acknowledgement and deregisters. It is the very runtime of `jobqueue worker`
(worker.runtime.main.WorkerProcess), in the app's process and event loop.

To combine with a lifespan of your own, enter `running_worker(...)` inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from worker.handlers import registry as builtin_registry
from worker.handlers.base import HandlerRegistry
from worker.runtime.main import WorkerProcess
from worker.settings import WorkerSettings, get_settings, normalize_dsn


def _settings(
    queues: Sequence[str] | None,
    concurrency: int | None,
    handler_modules: Sequence[str] | None,
    overrides: dict[str, Any],
) -> WorkerSettings:
    """The environment's worker settings (as `jobqueue worker` reads them), with these
    arguments on top. The health port is any free one unless `worker_port` is given: the app
    already serves its own port."""
    values: dict[str, Any] = {"worker_port": 0, **overrides}
    if queues is not None:
        values["worker_queues"] = list(queues)
    if concurrency is not None:
        values["max_concurrent_jobs"] = concurrency
    if handler_modules is not None:
        values["handler_modules"] = list(handler_modules)
    return WorkerSettings(**values)


@asynccontextmanager
async def running_worker(
    dsn: str | None = None,
    *,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
    handler_modules: Sequence[str] | None = None,
    registry: HandlerRegistry | None = None,
    **settings: Any,
) -> AsyncIterator[WorkerProcess]:
    """A worker for the duration of the block, drained when the block ends. `dsn` defaults
    to DB_URL; any other worker setting may be given by its name (`drain_timeout=10`,
    `poll_interval=0.5`, ...). Tasks declared in modules the app has imported are served;
    `handler_modules` imports more."""
    worker_settings = _settings(queues, concurrency, handler_modules, settings)
    handlers = registry if registry is not None else builtin_registry
    handlers.load_modules(worker_settings.handler_modules)
    process = WorkerProcess(
        worker_settings, handlers, dsn=normalize_dsn(dsn) if dsn else get_settings().dsn
    )
    await process.start()
    try:
        yield process
    finally:
        await process.shutdown()


def worker_lifespan(
    dsn: str | None = None, **options: Any
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A `lifespan=` for FastAPI or Starlette that runs a worker with the app; the options are
    `running_worker`'s."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with running_worker(dsn, **options):
            yield

    return lifespan
