"""The `ready ring` service: every second, one worker at a time turns the ready ring and
truncates a slot that claims have emptied (worker.db.ready, docs/storage.md). This is what
keeps a claim fast while a long transaction pins the xmin horizon: the dead entries claims
leave behind are dropped with their slot, not left for a vacuum that cannot run."""

from __future__ import annotations

import asyncpg

from worker.db import ready

# A slot is current for a second. When every job is claimed soon after it is due, a claim steps
# over about two seconds' dead entries (the current slot's and the one before's, until it is
# truncated); a slot that still holds a live entry keeps its dead ones until it is half a ring
# old, tidied and truncated: a few seconds, up to a ring period (8 s). Either way the bound is
# the ring's, not the pin's.
TURN_EVERY_MS = 1000
# Entries examined (and, under a pin, moved along) in the slot that is half a ring old, once a
# ring period (a backlog or a delayed job keeps its slot from being emptied): bounded,
# so one call stays short whatever the backlog.
MOVE_PER_TURN = 10_000


async def turn_once(pool: asyncpg.Pool) -> int | None:
    async with pool.acquire() as conn:
        return await ready.turn(conn, TURN_EVERY_MS, MOVE_PER_TURN)
