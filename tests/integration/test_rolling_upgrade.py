"""A rolling upgrade: the previous release's worker and API keep working while, and after, the
new code migrates the schema under them, side by side with the new code.

The previous release's code comes from git (`git archive`), and runs from that tree with this
venv (PYTHONPATH first, so its `worker`, `jobqueue` and `controller` packages win). Nothing
here names a migration: the test stays valid as later migrations land.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import asyncpg
import httpx
import pytest
from packaging.requirements import Requirement

from tests.fixtures.processes import log_tail, stop_process
from tests.fixtures.releases import MissingRevision, extract_tree
from tests.integration.api_support import JOBS, api_client, api_process, api_settings
from tests.integration.queue_handlers import RUNS_TABLE_DDL
from tests.integration.queue_support import (
    REPO,
    eventually,
    running_worker,
    start_worker_process,
)
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many
from worker.db.migrate import current_version, expected_version, migrate
from worker.handlers import registry

# The releases an upgrade starts from: c23d470, the last commit before migrations 0004 to 0008
# (scheduling, limits, workflows, the console); 5aa7136, the one that landed them, before
# 0009; and dce8aa6, the last release before 0010 and up. Each runs on the newest schema
# beside this tree's code.
PREVIOUS_RELEASES = ("c23d470", "5aa7136", "dce8aa6")
DEPS_DIR = "_deps"  # in a release's tree: the requirements it has and this venv lacks
OLD_QUEUE, NEW_QUEUE = "old", "new"  # each release's workers serve their own queue
PER_SOURCE = 40  # jobs each enqueuer puts on each queue


@pytest.fixture(scope="module", params=PREVIOUS_RELEASES)
def old_tree(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A previous release's packages, extracted from git. Without the history this cannot
    run, and it must not pass silently: it fails saying what is missing."""
    release = request.param
    try:
        target = extract_tree(release, tmp_path_factory.mktemp(f"release-{release}"))
    except MissingRevision as exc:
        pytest.fail(
            f"the rolling-upgrade test needs git history with commit {release} (the previous "
            f"release) to extract its code: {exc}",
            pytrace=False,
        )
    _install_missing_requirements(target)
    return target


def _satisfied(requirement: Requirement) -> bool:
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return False
    return requirement.specifier.contains(installed, prereleases=True)


def _install_missing_requirements(tree: Path) -> None:
    """A previous release's image carried its own dependencies, and some are gone from this
    venv (swagger-ui-bundle, replaced later). Those it lacks go into the release's own
    directory, which only its processes see; the rest are shared with this venv."""
    project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
    missing = [
        str(req)
        for req in map(Requirement, project.get("dependencies", []))
        if req.marker is None or req.marker.evaluate()
        if not _satisfied(req)
    ]
    if not missing:
        return
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(tree / DEPS_DIR),
            *missing,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(
            f"could not install the previous release's requirements {missing}: "
            f"{done.stderr.strip()[-2000:]}",
            pytrace=False,
        )


def _old_env(old_tree: Path, dsn: str) -> dict[str, str]:
    """The previous release's packages first; this repository after, for the test handlers."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(old_tree), str(REPO), str(old_tree / DEPS_DIR)]),
        "DB_URL": dsn,
    }


def _old_command(old_tree: Path, *args: str, env: dict[str, str]) -> str:
    """`python -m worker <args>` of the previous release, run to its end."""
    done = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=old_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"old `{' '.join(args)}` failed:\n{done.stdout}{done.stderr}"
    return done.stdout


async def _post_jobs(client: httpx.AsyncClient, queue: str, count: int) -> list[int]:
    jobs = [{"job_type": "noop", "payload": {"n": i}, "queue_name": queue} for i in range(count)]
    answer = await client.post(f"{JOBS}/batch", json={"jobs": jobs})
    assert answer.status_code in (200, 201), answer.text
    return [job["id"] for job in answer.json()["jobs"]]


async def _completed_by(conn: asyncpg.Connection, ids: list[int]) -> set[str]:
    """The names of the workers that completed these jobs; fails unless all completed."""

    async def all_done() -> bool:
        return await conn.fetchval(
            "SELECT count(*) = $2 FROM jobs WHERE id = ANY($1) AND status = 'completed'",
            ids,
            len(ids),
        )

    await eventually(all_done, within=120, what=f"{len(ids)} jobs to complete")
    rows = await conn.fetch(
        "SELECT DISTINCT w.name FROM jobs j JOIN workers w ON w.id = j.worker_id"
        " WHERE j.id = ANY($1)",
        ids,
    )
    return {row["name"] for row in rows}


async def test_the_previous_release_runs_on_the_new_schema_beside_the_new_code(
    old_tree: Path, pg_dsn_empty: str, tmp_path: Path
) -> None:
    old_env = _old_env(old_tree, pg_dsn_empty)
    # 1. The previous release, as it ran before the upgrade: its schema and its API.
    _old_command(old_tree, "migrate", env=old_env)
    old_api_log, old_worker_log = tmp_path / "old-api.log", tmp_path / "old-worker.log"
    started: list[subprocess.Popen[bytes]] = []
    conn = await connect(pg_dsn_empty)
    try:
        with api_process(
            pg_dsn_empty, old_api_log, cwd=old_tree, PYTHONPATH=old_env["PYTHONPATH"]
        ) as old_api:
            async with httpx.AsyncClient(base_url=old_api.url, timeout=30) as old_client:
                await _upgrade_under(old_tree, old_env, conn, old_client, started, old_worker_log)
    finally:
        await conn.close()
        for proc in started:
            stop_process(proc)
        print(f"--- old API\n{log_tail(old_api_log)}\n--- old worker\n{log_tail(old_worker_log)}")


async def _upgrade_under(
    old_tree: Path,
    old_env: dict[str, str],
    conn: asyncpg.Connection,
    old_client: httpx.AsyncClient,
    started: list[subprocess.Popen[bytes]],
    old_worker_log: Path,
) -> None:
    dsn = old_env["DB_URL"]
    old_version = await current_version(conn)
    before = await _post_jobs(old_client, OLD_QUEUE, PER_SOURCE)  # waiting through the upgrade

    # 2. The new code migrates under the running API.
    await migrate(dsn)
    assert await current_version(conn) == expected_version() >= old_version

    # 3. The previous release does not refuse the newer schema: its migrate is a no-op,
    # its API is ready, its worker starts and works.
    assert "up to date" in _old_command(old_tree, "migrate", env=old_env)
    ready = await old_client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["schema_version"] == expected_version()
    # ... and it is the previous release answering: it expects its own, older version
    assert ready.json()["expected_schema_version"] == old_version < expected_version()
    started.append(
        start_worker_process(
            dsn,
            old_worker_log,
            cwd=old_tree,
            PYTHONPATH=old_env["PYTHONPATH"],
            WORKER_QUEUES=OLD_QUEUE,
            JOBQUEUE_WORKER_NAME="old-worker",
        )
    )

    # 4. Each release enqueues onto both queues: the old API, the new data layer and the
    # new API.
    by_old_api = {q: await _post_jobs(old_client, q, PER_SOURCE) for q in (OLD_QUEUE, NEW_QUEUE)}
    by_new_code = {
        q: [
            job.id
            for job, _ in await enqueue_many(
                conn, [NewJob("noop", {"n": i}, queue_name=q) for i in range(PER_SOURCE)]
            )
        ]
        for q in (OLD_QUEUE, NEW_QUEUE)
    }
    async with api_client(api_settings(dsn)) as client:
        answer = await client.post(
            f"{JOBS}/batch",
            json={"jobs": [{"job_type": "noop", "queue_name": OLD_QUEUE}] * PER_SOURCE},
        )
        assert answer.status_code in (200, 201), answer.text
        by_new_api = [job["id"] for job in answer.json()["jobs"]]

    # 5. The new worker beside the old one.
    async with running_worker(dsn, registry, worker_queues=[NEW_QUEUE], worker_name="new-worker"):
        old_work = before + by_old_api[OLD_QUEUE] + by_new_code[OLD_QUEUE] + by_new_api
        assert await _completed_by(conn, old_work) == {"old-worker"}
        new_work = by_old_api[NEW_QUEUE] + by_new_code[NEW_QUEUE]
        assert await _completed_by(conn, new_work) == {"new-worker"}

    # 6. The old API reads what both wrote.
    job = await old_client.get(f"{JOBS}/{by_new_code[OLD_QUEUE][0]}")
    assert job.status_code == 200 and job.json()["status"] == "completed", job.text
    stats = await old_client.get(f"{JOBS}/stats/overview")
    assert stats.status_code == 200, stats.text
    rows = await conn.fetch("SELECT status, attempts, count(*) FROM jobs GROUP BY 1, 2")
    total = PER_SOURCE * 6
    assert [(r["status"], r["attempts"], r["count"]) for r in rows] == [("completed", 1, total)]


async def test_a_killed_worker_of_the_previous_release_is_rescued_by_its_lease(
    old_tree: Path, pg_dsn: str, tmp_path: Path
) -> None:
    """The previous release holds no liveness lock and records no key: a new worker beside it
    never takes its jobs for a free lock, only once its lease has run out, as before."""
    conn = await connect(pg_dsn)
    await conn.execute(RUNS_TABLE_DDL)
    old_log = tmp_path / "old-worker.log"
    old = start_worker_process(
        pg_dsn,
        old_log,
        cwd=old_tree,
        PYTHONPATH=os.pathsep.join([str(old_tree), str(REPO)]),
        JOBQUEUE_WORKER_NAME="old-worker",
        JOBQUEUE_LEASE_SECONDS="4",
    )
    try:
        # the new worker serves another queue, so the rescued job stays pending for the check
        async with running_worker(pg_dsn, registry, worker_queues=[NEW_QUEUE]):
            ((job, _),) = await enqueue_many(conn, [NewJob("test_record", {"seconds": 300})])

            async def started() -> bool:
                return bool(await conn.fetchval("SELECT count(*) FROM test_runs"))

            await eventually(started, within=60, what="the old worker to start the job")
            key = await conn.fetchval("SELECT lock_key FROM workers WHERE name = 'old-worker'")
            assert key is None
            old.kill()  # SIGKILL
            old.wait(30)

            async def rescued() -> asyncpg.Record | None:
                return await conn.fetchrow(
                    "SELECT j.last_error, j.run_at, w.lease_expires_at AS lease_end"
                    " FROM jobs j, workers w"
                    " WHERE j.id = $1 AND j.status = 'pending' AND w.name = 'old-worker'",
                    job.id,
                )

            row = await eventually(rescued, within=60, what="the old worker's job to be rescued")
            assert row["last_error"].startswith("lease expired"), row
            assert row["run_at"] >= row["lease_end"], row
    finally:
        await conn.close()
        stop_process(old)
        print(f"--- old worker\n{log_tail(old_log)}")
