"""The tracker's slots: a slot frees when its job's handler returns, so the next claim overlaps
the acknowledgement's write, and no more than twice the slots are ever held."""

from __future__ import annotations

import asyncio

from worker.db.claims import ClaimedJob
from worker.runtime.tracker import Tracker


def _job(job_id: int) -> ClaimedJob:
    return ClaimedJob(
        id=job_id,
        job_type="noop",
        payload={},
        queue_name="default",
        attempts=1,
        max_tries=3,
        timeout_seconds=None,
    )


async def _started(tracker: Tracker, *ids: int) -> None:
    jobs = [_job(i) for i in ids]
    tracker.hold(jobs)
    for job in jobs:
        tracker.start(job, asyncio.get_running_loop().create_task(asyncio.sleep(0)))


async def test_a_finished_job_frees_its_slot_before_its_acknowledgement() -> None:
    tracker = Tracker(2)
    await _started(tracker, 1, 2)
    assert tracker.free == 0
    tracker.slot_freed.clear()
    tracker.finished(1)  # its outcome now waits in the acknowledgement buffer
    assert tracker.slot_freed.is_set()
    assert tracker.free == 1
    assert tracker.known_ids() == [1, 2]  # still held: the reconcile must not give it back
    tracker.release([1])  # written
    assert tracker.free == 1
    assert tracker.done == set()


async def test_unwritten_acknowledgements_stop_the_claims_at_twice_the_slots() -> None:
    tracker = Tracker(2)
    await _started(tracker, 1, 2)
    tracker.finished(1)
    tracker.finished(2)
    assert tracker.free == 2
    await _started(tracker, 3, 4)  # claimed while 1 and 2 wait to be written
    assert tracker.free == 0
    tracker.finished(3)
    tracker.finished(4)
    # four outcomes unwritten (the database is away): no slot, though no handler runs
    assert tracker.in_flight == 0
    assert tracker.free == 0
    tracker.release([1, 2])
    assert tracker.free == 2


async def test_a_job_given_back_unstarted_frees_its_slot() -> None:
    tracker = Tracker(1)
    tracker.hold([_job(7)])
    assert tracker.free == 0
    tracker.release([7])
    assert tracker.free == 1
    tracker.finished(7)  # a late call for a job no longer held changes nothing
    assert tracker.done == set()
    assert tracker.free == 1
