"""From zero, one replica first: the rest follow once its worker has claimed (or after
HEAD_START_SECONDS, whichever comes first).

A scale-up from zero to N starts N interpreters at once, and on a node they share the CPU: each
one's imports take N times as long, so the first job waits for all of them. Started alone, the
first replica's worker claims in the time one start takes; the others start as soon as it has
(the claim's NOTIFY wakes the controller), so the burst's drain loses only that one start. The
bound keeps a first pod that never comes up (a bad image, a full node) from holding the rest.

Pure, like controller.policy: the loop keeps the HeadStart between ticks and tells it whether
any job of the Deployment's queues is running (the depth probe's `running`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.policy import Decision, Reason

HEAD_START_SECONDS = 3.0


@dataclass(frozen=True)
class HeadStart:
    since: float  # when the first replica was asked for


def first_replica(
    decision: Decision, current: int, head_start: HeadStart | None, running: int, now: float
) -> tuple[Decision, HeadStart | None]:
    """The decision, with a scale-up from zero cut to one replica and the rest held until a
    job runs or the head start is over; and the head start to keep for the next tick."""
    if current == 0:
        if decision.replicas > 1:
            return replace(decision, replicas=1, reason=Reason.COLD_START), HeadStart(now)
        return decision, None
    if head_start is None or decision.replicas <= current:
        return decision, None
    if running > 0 or now - head_start.since >= HEAD_START_SECONDS:
        return decision, None
    return replace(decision, replicas=current, reason=Reason.COLD_START), head_start
