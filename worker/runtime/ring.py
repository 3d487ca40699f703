"""The `ready ring` service: every second, one worker at a time turns the ready ring and
truncates a slot that claims have emptied (worker.db.ready, docs/storage.md). This is what
keeps a claim fast while a long transaction pins the xmin horizon: the dead entries claims
leave behind are dropped with their slot, not left for a vacuum that cannot run."""

from __future__ import annotations

import asyncpg

from worker.db import ready

# A slot is current for a second, so a claim steps over at most about a second's dead entries
# (plus those of the slot before, until it is truncated): at 3,000 jobs/s, a few thousand.
TURN_EVERY_MS = 1000
# Entries moved out of the oldest slot per call (a backlog or a delayed job keeps its slot
# from being emptied): bounded, so one call stays short whatever the backlog.
MOVE_PER_TURN = 10_000


async def turn_once(pool: asyncpg.Pool) -> int | None:
    async with pool.acquire() as conn:
        return await ready.turn(conn, TURN_EVERY_MS, MOVE_PER_TURN)
