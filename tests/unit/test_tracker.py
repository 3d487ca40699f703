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
    tracker.written([(1, 1)])
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
    tracker.written([(1, 1), (2, 1)])
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


async def test_a_write_for_an_earlier_claim_never_lets_go_of_a_later_one() -> None:
    """Job 5 finished under attempt 1, but its outcome could not be written for a while (an
    outage); meanwhile it was rescued and this worker claimed it again (attempt 2). The late
    write for attempt 1 must not free attempt 2, which runs now: the reconcile would give it
    back while it runs, and another worker would run it too."""
    tracker = Tracker(1)
    await _started(tracker, 5)
    tracker.finished(5)  # attempt 1's outcome waits
    again = _job(5)._replace(attempts=2)
    tracker.hold([again])
    tracker.start(again, asyncio.get_running_loop().create_task(asyncio.sleep(0)))
    assert tracker.free == 0  # attempt 2 runs in the one slot
    tracker.written([(5, 1)])  # the late write of attempt 1 (fenced out in the database)
    assert tracker.known_ids() == [5]
    assert tracker.free == 0
    tracker.finished(5)
    tracker.written([(5, 2)])
    assert tracker.known_ids() == []
    assert tracker.free == 1
