"""The worker's liveness lock: what lets a rescuer know at once that a worker is dead.

The worker's LISTEN connection (the waker's, the one connection that is not pooled: a pooled
connection is handed to another task after each use, and may be replaced) holds a
session-level advisory lock keyed by `workers.lock_key` for its whole life. When the process
dies, the server frees the lock, and any live worker's rescue sweep (worker.runtime.rescuer)
returns its jobs at once.

The worker claims only while it holds the lock: if the connection drops while the process
lives, its jobs may be rescued, and a worker that kept claiming would have each new job
rescued under it. So the claim loop waits for `held`, and the claim itself is refused by the
database (LivenessLost) when the lock is free although our client still believes its
connection alive; then the connection is dropped and made again (`lost`).

Every worker sweeps for dead workers on that same connection, every second or so, as its
idle probe: it costs the pool nothing (worker.runtime.rescuer). A rescuer trusts a free lock
only when its own view is settled (`may_rescue`): after its own connection came back (a
restarted or failed-over server drops every worker's connection at once), it waits
SETTLE_SECONDS for the others to take their locks again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from worker.db import workers
from worker.db.listen import PROBE_SECONDS

log = logging.getLogger(__name__)

# How long after our own reconnect we wait before taking a free lock for a dead worker: more
# than the waker's reconnect backoff (WAKER_MAX_BACKOFF), so that after a server restart every
# live worker has taken its lock again. The database adds the same rule from its own start.
SETTLE_SECONDS = 5.0
WAKER_MAX_BACKOFF = 1.0  # the waker reconnects at least this often while the server is away
# The server ends a statement of the lock's connection after this long, well before the
# client's own deadline for a tick (PROBE_SECONDS), past which the session ends and the lock
# with it. A dead worker's jobs can be slow to find under a pinned horizon: such a sweep gives
# up (the pool's lease sweep tries again), and the lock stays.
LOCK_STATEMENT_SECONDS = 5.0


def lock_connect_kwargs(
    kwargs: dict[str, Any], bound_seconds: float = LOCK_STATEMENT_SECONDS
) -> dict[str, Any]:
    """The pool's connect arguments (DatabaseTimeouts.connect_kwargs) for the lock's connection:
    the same deadlines, with statement_timeout at most `bound_seconds`."""
    server_settings = dict(kwargs.get("server_settings") or {})
    bound = int(bound_seconds * 1000)
    current = int(server_settings.get("statement_timeout", "0"))
    server_settings["statement_timeout"] = str(min(current, bound) if current > 0 else bound)
    return {**kwargs, "server_settings": server_settings}


async def new_liveness(pool: asyncpg.Pool) -> Liveness:
    """A liveness lock with a key of its own; the waker takes it once it connects."""
    async with pool.acquire() as conn:
        return Liveness(await workers.next_lock_key(conn))


class Liveness:
    def __init__(self, key: int, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.key = key
        self.settle_seconds = settle_seconds
        self.held = asyncio.Event()
        self.acquisitions = 0
        self._retired = False
        self._since = 0.0
        self._drop: Callable[[], None] = lambda: None
        self._on_regained: list[Callable[[], None]] = []
        self._sweep: Callable[[asyncpg.Connection], Awaitable[object]] | None = None
        self.tick_seconds = PROBE_SECONDS

    def sweep_with(
        self, sweep: Callable[[asyncpg.Connection], Awaitable[object]], every: float
    ) -> None:
        """Run the rescuer's sweep for dead workers on the lock's own connection, every
        `every` seconds (jittered), in place of its idle probe: it costs the pool nothing,
        and it runs only while this worker holds its own lock."""
        self._sweep = sweep
        self.tick_seconds = every

    def on_regained(self, callback: Callable[[], None]) -> None:
        """`callback` runs each time the lock is taken again after a loss (a rescuer may have
        taken our jobs meanwhile: the caller looks for lost ones)."""
        self._on_regained.append(callback)

    def drop_with(self, drop: Callable[[], None]) -> None:
        """How to drop the connection that should hold the lock (the waker's reconnect)."""
        self._drop = drop

    # --- the session hooks of the waker's Listener (worker.db.listen.SessionHooks)
    async def opened(self, conn: asyncpg.Connection) -> None:
        await workers.hold_liveness(conn, self.key)
        self.acquisitions += 1
        self._since = time.monotonic()
        self.held.set()
        if self.acquisitions > 1:
            log.info("liveness lock %d held again", self.key)
            for callback in self._on_regained:
                callback()

    async def tick(self, conn: asyncpg.Connection) -> None:
        if self._sweep is None or not self.may_rescue():
            await workers.probe(conn)
        else:
            await self._sweep(conn)

    def retire(self) -> None:
        """The worker is shutting down: the lock's end is expected, not worth a warning."""
        self._retired = True

    def closed(self) -> None:
        if self.held.is_set() and not self._retired:
            log.warning("liveness lock %d lost with its connection; not claiming", self.key)
        self.held.clear()

    # --- what the claim loop and the rescuer ask
    def lost(self) -> None:
        """The database refused a claim: the lock is not held, whatever our connection looks
        like. Stop claiming and make the connection again."""
        log.warning("liveness lock %d is not held (claim refused); reconnecting", self.key)
        self.held.clear()
        self._drop()

    def may_rescue(self) -> bool:
        """Whether a free lock of another worker means it is dead, as far as we can tell: we
        hold ours, and have for SETTLE_SECONDS unless this is the process's first session."""
        if not self.held.is_set():
            return False
        return self.acquisitions == 1 or time.monotonic() - self._since >= self.settle_seconds
