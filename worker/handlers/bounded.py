"""Running a memory-heavy handler's work in a process of its own, under a memory bound.

A 189-byte job (a 1x1 PNG resized to 10000x10000) took a worker to 822 MB: the kernel's OOM
killer then took the pod, with every other job it ran, and the job was claimed again. Here
the work runs in a child process whose address space is capped (RLIMIT_AS, from
JOBQUEUE_HANDLER_MEMORY_MB): past the cap an allocation fails, the child reports MemoryError,
and the job fails for good. The worker and its other jobs never see the memory.

Children fork from a forkserver that has imported the handlers once, so a job pays a fork
(milliseconds), not an interpreter start. A child runs one job and exits, so its memory goes
back to the system. Progress reports (ctx.progress) travel back over the pipe. A timeout or a
cancel kills the child.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import resource
import signal
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from worker.handlers.base import JobContext, PermanentError
from worker.handlers.config import configure, handler_settings
from worker.settings import HandlerSettings

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

MiB = 1024 * 1024
_CONTEXT: Any = None
# What the forkserver imports once for all its children: the handlers, and what a handler
# module names with preload() (Pillow), which the worker itself loads only when it needs them
# (issue 27: a worker's cold start).
_PRELOAD = ["worker.handlers"]

Work = Callable[[dict[str, Any], JobContext], Any]


def preload(*modules: str) -> None:
    """Have the forkserver import `modules` at its start (before the first bounded job)."""
    _PRELOAD.extend(m for m in modules if m not in _PRELOAD)


def _mp_context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        import multiprocessing  # the first bounded job's, not every worker start's

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(_PRELOAD))
        _CONTEXT = context
    return _CONTEXT


class OutOfMemory(PermanentError):
    """The job needed more memory than JOBQUEUE_HANDLER_MEMORY_MB allows."""


def _child(
    conn: Connection,
    limit_bytes: int,
    target: str,
    payload: Any,
    ctx: JobContext,
    settings: HandlerSettings,
) -> None:
    """The child's whole life: cap the address space, run the work, send one verdict."""
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    configure(settings)  # the worker's, not what the forkserver read at its start
    module, _, name = target.rpartition(".")

    def report(fraction: float, message: str | None) -> None:
        conn.send(("progress", fraction, message))

    def log(record: logging.LogRecord) -> None:
        conn.send(("log", record.levelno, record.getMessage()))

    try:
        work = getattr(importlib.import_module(module), name)
        result = work(payload, replace(ctx, progress_sink=report, log_sink=log))
        conn.send(("ok", result))
    except MemoryError:
        conn.send(("memory", None))
    except PermanentError as exc:
        conn.send(("permanent", (type(exc).__module__, type(exc).__qualname__, _args(exc))))
    except BaseException as exc:  # any other failure is the attempt's, and may be retried
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _args(exc: BaseException) -> tuple[Any, ...]:
    # InvalidPayload keeps (field, problem); other permanent errors their message
    field, problem = getattr(exc, "field", None), getattr(exc, "problem", None)
    return (field, problem) if field is not None else (str(exc),)


def _rebuild(module: str, qualname: str, args: tuple[Any, ...]) -> PermanentError:
    try:
        kind = getattr(importlib.import_module(module), qualname)
        error = kind(*args)
        if isinstance(error, PermanentError):
            return error
    except Exception:  # a class that cannot be rebuilt here: keep its words
        pass
    return PermanentError(" ".join(str(a) for a in args))


def _portable(ctx: JobContext) -> JobContext:
    return replace(ctx, progress_sink=None, log_sink=None, stop_event=None)


async def run_bounded(work: Work, payload: dict[str, Any], ctx: JobContext) -> Any:
    """`work(payload, ctx)` (a module-level function) in a child process under the memory
    bound; its result, or its error. MemoryError there is OutOfMemory (permanent) here."""
    settings = handler_settings()
    limit_mb = settings.handler_memory_mb
    context = _mp_context()
    receiver, sender = context.Pipe(duplex=False)
    target = f"{work.__module__}.{work.__qualname__}"
    child = context.Process(
        target=_child,
        # the sinks and the stop event hold locks, which do not pickle: the child gets
        # sinks that write to the pipe, and a timeout or cancel kills it instead; and the
        # worker's handler settings, which the forkserver did not see
        args=(sender, limit_mb * MiB, target, payload, _portable(ctx), settings),
        daemon=True,
    )
    await asyncio.to_thread(child.start)
    sender.close()  # the child holds its own end: EOF here once it is gone
    try:
        while True:
            try:
                message = await asyncio.to_thread(receiver.recv)
            except EOFError:
                break
            kind = message[0]
            if kind == "progress":
                ctx.progress(message[1], message[2])
                continue
            if kind == "log":
                ctx.logger.log(message[1], message[2])
                continue
            if kind == "ok":
                return message[1]
            if kind == "memory":
                raise OutOfMemory(
                    f"out of memory: the job needs more than {limit_mb} MiB "
                    "(JOBQUEUE_HANDLER_MEMORY_MB); the worker and its other jobs were not touched"
                )
            if kind == "permanent":
                raise _rebuild(*message[1])
            raise RuntimeError(message[1])
        await asyncio.to_thread(child.join, 5)
        code = child.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            raise PermanentError(
                f"the handler's process was killed by {name}; with SIGKILL, most likely for its "
                f"memory (JOBQUEUE_HANDLER_MEMORY_MB={limit_mb}, or the pod's limit)"
            )
        raise RuntimeError(f"the handler's process ended (exit {code}) without an answer")
    finally:
        if child.is_alive():  # cancelled or timed out: the work stops with us
            child.kill()
            await asyncio.shield(asyncio.to_thread(child.join, 5))
        receiver.close()
