"""The processes the benchmarks start: our worker, pgqueuer's QueueManager, and the raw loop.

Each sets up (imports), says it is ready, waits for `go`, runs, and stops on `stop` or, for
the anchors that can, when the queue is empty.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import asyncpg
import uvloop

from bench.common import SQL


def _app(kind: str, index: int) -> dict[str, Any]:
    return {"server_settings": {"application_name": f"bench-{kind}-{index}"}}


async def _until(stop: Any) -> None:
    """Wait for a multiprocessing Event without blocking the loop."""
    await asyncio.to_thread(stop.wait)


# ----------------------------------------------------------------------------- ours
def ours(
    index: int,
    ready: Any,
    go: Any,
    stop: Any,
    dsn: str,
    slots: int,
    ack_batch: int,
    extra: dict[str, Any] | None = None,
) -> None:
    from worker.handlers import registry  # noqa: F401 - the built-in noop registers here
    from worker.handlers.base import registry as handlers
    from worker.runtime.main import WorkerProcess
    from worker.settings import Settings

    @handlers.register("latency")
    async def latency(payload: dict[str, Any], ctx: Any) -> dict[str, float]:
        return {"latency": time.time() - payload["t"]}

    settings = Settings(
        db_url=dsn,
        max_concurrent_jobs=slots,
        ack_batch_size=ack_batch,
        worker_port=0,
        worker_name=f"bench-ours-{index}",
        worker_queues=["default"],
        retention_seconds=0,
        handler_modules=[],
        poll_interval=1.0,
        debug=False,
        **(extra or {}),
    )
    ready.set()
    go.wait()

    async def run() -> None:
        process = WorkerProcess(settings.worker, handlers, dsn=settings.dsn)
        await process.start()
        await _until(stop)
        await process.shutdown()

    uvloop.run(run())


# ----------------------------------------------------------------------------- pgqueuer
def pgqueuer(
    index: int, ready: Any, go: Any, stop: Any, dsn: str, batch: int, latencies: Any = None
) -> None:
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    ready.set()
    go.wait()
    seen: list[float] = []

    async def run() -> None:
        conn = await asyncpg.connect(dsn, **_app("pgqueuer", index))
        manager = QueueManager(Queries(AsyncpgDriver(conn)))

        @manager.entrypoint("noop")
        async def noop(job: Any) -> None:
            return None

        @manager.entrypoint("latency")
        async def latency(job: Any) -> None:
            seen.append(time.time() - float(job.payload))

        mode = QueueExecutionMode.drain if latencies is None else QueueExecutionMode.continuous
        runner = asyncio.create_task(
            manager.run(batch_size=batch, mode=mode, dequeue_timeout=timedelta(seconds=1))
        )
        if latencies is not None:
            await _until(stop)
            manager.shutdown.set()
        await runner
        await conn.close()

    uvloop.run(run())
    if latencies is not None:
        latencies.put(seen)


async def pgqueuer_fill(dsn: str, count: int, chunk: int = 10_000) -> None:
    from pgqueuer import AsyncpgDriver, Queries

    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    finally:
        await conn.close()


# ----------------------------------------------------------------------------- raw loop
def raw_loop(index: int, ready: Any, go: Any, stop: Any, dsn: str, batch: int) -> None:
    ready.set()
    go.wait()

    async def run() -> None:
        conn = await asyncpg.connect(dsn, **_app("raw", index))
        claim = await conn.prepare(SQL["raw_claim"])
        complete = await conn.prepare(SQL["raw_complete"])
        while ids := [row[0] for row in await claim.fetch(batch)]:
            await complete.fetch(ids)
        await conn.close()

    uvloop.run(run())
