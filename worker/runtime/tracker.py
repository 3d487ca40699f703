"""The one owner of a worker's jobs: which it holds (claimed, not yet acknowledged), which run
now, and how many slots are free. The claim loop, the acknowledgements, the heartbeat and the
rescuer each read or change this, and none of them knows the others.

A job is held from the moment its claim reply arrives until its acknowledgement is written (or
given up on), so "held" is exactly the set of rows this worker may leave running in the
database; the reconcile gives back every other row running under its id.

A slot is taken from the claim until the job's handler returns, not until its acknowledgement
is written: the claim that refills it then overlaps that write, which is what a small pool
waits on (two round trips per job become about one). A worker runs at most `concurrency`
handlers and holds at most twice as many jobs, so acknowledgements that cannot be written
(an outage) stop the claims.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from worker.db.claims import ClaimedJob


@dataclass(slots=True)  # one per job: slots make it cheaper to build
class RunningJob:
    job: ClaimedJob
    task: asyncio.Task[None]
    started: float = field(default_factory=time.monotonic)


class Tracker:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        # id -> attempts (the fencing token) of every job claimed and not yet acknowledged
        self.held: dict[int, int] = {}
        self.running: dict[int, RunningJob] = {}
        # held jobs whose handlers have returned: their outcomes wait for the next write
        self.done: set[int] = set()
        # jobs that ran but whose outcome could not be written: they stay running under this
        # worker until their lease expires, and must not be given back as never started
        self.abandoned: set[int] = set()
        # held jobs of queues with limits: their acknowledgement frees room a claim can use
        self.limited: set[int] = set()
        self.slot_freed = asyncio.Event()
        # A claim and a reconcile never overlap: while a claim's reply is on its way, rows it
        # committed are running under our id yet not held, and must not be given back.
        self.claim_gate = asyncio.Lock()

    @property
    def free(self) -> int:
        busy = len(self.held) - len(self.done)  # claimed, and not finished yet
        return min(self.concurrency - busy, 2 * self.concurrency - len(self.held))

    @property
    def in_flight(self) -> int:
        return len(self.running)

    def hold(self, jobs: Iterable[ClaimedJob]) -> None:
        for job in jobs:
            self.held[job.id] = job.attempts
            # claimed again while an earlier claim's outcome still waits to be written (it was
            # rescued meanwhile): this claim has not finished, and that write must not free it
            self.done.discard(job.id)
            if job.limited:
                self.limited.add(job.id)

    def start(self, job: ClaimedJob, task: asyncio.Task[None]) -> None:
        self.running[job.id] = RunningJob(job, task, time.monotonic())

    def finished(self, job_id: int) -> RunningJob | None:
        """The job's handler returned (or was stopped): its slot is free for the next claim,
        while its outcome waits to be written."""
        if job_id in self.held:
            self.done.add(job_id)
            self.slot_freed.set()
        return self.running.pop(job_id, None)

    def release(self, job_ids: Iterable[int]) -> None:
        """Let go of jobs given back, or stopped, before their handlers finished."""
        for job_id in job_ids:
            self.held.pop(job_id, None)
            self.done.discard(job_id)
            self.limited.discard(job_id)
        self.slot_freed.set()

    def written(self, tokens: Iterable[tuple[int, int]]) -> None:
        """Let go of finished jobs whose outcomes are written (or given up on), by fencing
        token (id, attempts): only the claim that finished, never a later claim of the same
        job that is running now."""
        for job_id, attempts in tokens:
            if job_id in self.done and self.held.get(job_id) == attempts:
                self.held.pop(job_id)
                self.done.discard(job_id)
                self.limited.discard(job_id)
        self.slot_freed.set()

    def abandon(self, job_ids: Iterable[int]) -> None:
        self.abandoned.update(job_ids)

    def known_ids(self) -> list[int]:
        """Jobs this worker claimed and knows of: held, or run but left unacknowledged."""
        return [*self.held, *self.abandoned]

    def running_tokens(self) -> tuple[list[int], list[int]]:
        """Ids and attempts of the jobs whose handlers run now."""
        jobs = [entry.job for entry in self.running.values()]
        return [job.id for job in jobs], [job.attempts for job in jobs]

    def cancel(self, job_ids: Iterable[int]) -> list[int]:
        """Stop the handlers of these jobs; returns the ids that were running."""
        stopped = []
        for job_id in job_ids:
            entry = self.running.get(job_id)
            if entry is not None:
                entry.task.cancel()
                stopped.append(job_id)
        return stopped
