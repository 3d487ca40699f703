"""The LISTEN connection: wakes the claim loop when jobs are enqueued on our queues, and passes
on cancellations. It reconnects with backoff (worker.db.listen); after a reconnect it wakes the
loop anyway, since notifications sent meanwhile are gone. It is also the connection that
holds the worker's liveness lock (worker.runtime.liveness), taken first in every session."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from worker.db import NEW_JOB_CHANNEL
from worker.db.listen import Listener, ListeningService
from worker.runtime.liveness import WAKER_MAX_BACKOFF, Liveness

CANCEL_CHANNEL = "jobqueue_cancel"


class Waker(ListeningService):
    def __init__(
        self,
        dsn: str,
        queues: list[str],
        on_new_job: Callable[[], None],
        on_cancel: Callable[[int], None],
        connect_kwargs: dict[str, Any] | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        self._queues = set(queues)
        self._on_new_job = on_new_job
        self._on_cancel = on_cancel
        self._listener = Listener(
            dsn,
            {NEW_JOB_CHANNEL: self._new_job, CANCEL_CHANNEL: self._cancel},
            on_new_job,  # whatever was enqueued while we were not listening
            connect_kwargs,
            session=liveness,
            max_backoff=5.0 if liveness is None else WAKER_MAX_BACKOFF,
        )
        if liveness is not None:
            liveness.drop_with(self._listener.reconnect)

    def _new_job(self, _conn: object, _pid: int, _channel: str, queue: object) -> None:
        if queue in self._queues:
            self._on_new_job()

    def _cancel(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(ValueError):
            self._on_cancel(int(str(payload)))

    async def run(self) -> None:
        await self._listener.run()
