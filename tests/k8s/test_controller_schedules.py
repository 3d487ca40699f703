"""L3, finding 4: a cron job fires on a pool at zero. The scheduler runs inside workers, so the
controller counts a due schedule as demand (reason schedule-due): it scales the Deployment from
0 to 1, the worker that starts (a real `jobqueue worker` process, standing in for the pod)
enqueues and runs the tick's job, and the pool goes back to zero."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from controller import annotations as ann
from tests.fixtures.processes import stop_process
from tests.integration.firsthour_support import cli
from tests.integration.queue_support import fetch, start_worker_process
from tests.k8s import harness as h

pytestmark = pytest.mark.k8s


async def test_a_due_cron_schedule_scales_a_pool_from_zero_and_its_job_runs(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    config = {ann.QUEUES: "reports", ann.MIN_REPLICAS: "0", ann.SCALE_DOWN_DELAY: "1"}
    plane.apply(h.deployment("nightly", replicas=0, annotations=config), namespace)
    h.start_tracked(controllers, kubeconfig, namespace, pg_dsn, tmp_path)
    watch = h.Watch(plane, namespace, controllers)
    await watch.status("nightly", "the controller to settle at zero", reason="steady")

    added = cli(pg_dsn, "schedules", "add", "every-minute", "noop", "--cron", "* * * * *",
                "--queue", "reports")  # fmt: skip
    assert added.returncode == 0, added.stderr
    # nothing is enqueued before the tick, and no worker runs: only the controller can act
    assert h.replicas(plane, namespace, "nightly") == 0
    await h.eventually(
        lambda: h.replicas(plane, namespace, "nightly") == 1,
        what="the due schedule to scale the pool from 0 to 1",
        within=90,  # the next minute's tick, then a controller interval
        controllers=controllers,
    )
    (up,) = h.events(plane, namespace, "nightly", "ScaledUp")
    assert "from 0 to 1" in up["message"] and "(schedule-due: 1 due schedules)" in up["message"]

    # the pod the Deployment now asks for: a worker serving the pool's queue
    worker: subprocess.Popen[bytes] | None = start_worker_process(
        pg_dsn, tmp_path / "worker.log", WORKER_QUEUES="reports", JOBQUEUE_SCHEDULER_INTERVAL="0.5"
    )
    try:

        async def ran() -> Any:
            rows = await fetch(
                pg_dsn,
                "SELECT j.status FROM schedules s JOIN jobs j ON j.id = s.last_job_id "
                "WHERE s.name = 'every-minute'",
            )
            return rows and rows[0]["status"] == "completed"

        await h.eventually(ran, what="the tick's job to run", controllers=controllers)
        # done: the schedule is not due until the next minute, and nothing else waits
        await watch.replicas("nightly", 0, "the pool back at zero")
    finally:
        stop_process(worker)
        worker = None
