"""The soak's offered load, as a process of its own that runs the soaked tree's code (it is
started with that tree first on PYTHONPATH): `rate` jobs a second, a tenth of them every
100 ms, through the tree's own bulk enqueue when it has one (worker.db.jobs
.enqueue_many_brief), else through the SQL contract jobqueue_enqueue(), until SIGTERM. A batch
that falls behind is not made up: the offered rate is a cap, and the soak reads what was
really enqueued from `jobs`.

    python -m bench.soak_offer DSN RATE
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg


def _enqueuer(conn: asyncpg.Connection) -> tuple[str, Callable[[int], Awaitable[object]]]:
    try:
        from worker.db.jobs import NewJob, enqueue_many_brief
    except ImportError:
        sql = "SELECT count(jobqueue_enqueue('noop')) FROM generate_series(1, $1)"
        return "jobqueue_enqueue()", lambda n: conn.fetchval(sql, n)
    return "enqueue_many_brief", lambda n: enqueue_many_brief(conn, [NewJob("noop")] * n)


async def main(dsn: str, rate: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    conn = await asyncpg.connect(dsn)
    how, enqueue = _enqueuer(conn)
    print(f"offering {rate} jobs/s through {how}", flush=True)
    batch = max(1, rate // 10)
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            await enqueue(batch)
            next_at = max(next_at + 0.1, time.monotonic() - 0.1)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
