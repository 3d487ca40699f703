"""Lists of jobs read like single jobs: `depends_on` filled in for the jobs that have
dependencies (one query per page), as GET /jobs/{id} fills it for one."""

from __future__ import annotations

from collections.abc import Sequence

from worker.db import sql_files
from worker.db.jobs import Executor, Job

_sql = sql_files.statements("job_lists")


async def fill_dependencies(executor: Executor, jobs: Sequence[Job]) -> None:
    waiting = [job.id for job in jobs if job.dependencies_left is not None]
    if not waiting:
        return
    rows = await executor.fetch(_sql("dependencies_of_jobs"), waiting)
    found = {row["job_id"]: list(row["depends_on"]) for row in rows}
    for job in jobs:
        if job.dependencies_left is not None:
            job.depends_on = found.get(job.id, [])
