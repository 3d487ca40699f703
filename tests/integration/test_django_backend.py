"""The django.tasks backend (jobqueue.django), as a Django user meets it: a small project
(tests/fixtures/django_site) served by `manage.py runserver` on real PostgreSQL, a view that
enqueues a Django `@task` inside `transaction.atomic()`, `jobqueue worker` running it, and
Django's TaskResult read back through the backend."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.doc_examples import example
from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process, wait_until
from tests.integration.queue_support import REPO, fetchval

SITE = REPO / "tests" / "fixtures" / "django_site"


def _env(dsn: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "djsite.settings",
        "PYTHONPATH": os.pathsep.join([str(SITE), str(REPO)]),
        "DB_URL": dsn,
    }


@pytest.fixture
def django_site(pg_dsn: str, tmp_path: Path, workers: Any) -> Iterator[httpx.Client]:
    """The Django server and one worker, both on this test's database."""
    _sql(pg_dsn, "CREATE TABLE notes (body text PRIMARY KEY, done bool DEFAULT false)")
    port = free_port()
    log = tmp_path / "django.log"
    server = _start(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
        log,
        {**os.environ, **_env(pg_dsn)},
    )
    queues = "default,reports"
    workers(
        pg_dsn, JOBQUEUE_HANDLER_MODULES="jobqueue.django", WORKER_QUEUES=queues, **_env(pg_dsn)
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_until(lambda: _answers(client), timeout=60, what="the Django server")
        yield client
    finally:
        client.close()
        stop_process(server)
        print(f"--- django.log\n{log_tail(log)}")


def _start(args: list[str], log: Path, env: dict[str, str]) -> Any:
    return start_logged(args, log, env=env, cwd=str(SITE))


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/result/0").status_code in (200, 500)
    except httpx.TransportError:
        return False


def _result(client: httpx.Client, result_id: str, within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        body: dict[str, Any] = client.get(f"/result/{result_id}").json()
        if body["finished"] or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_a_task_enqueued_in_a_view_runs_on_a_worker_and_its_result_reads_back(
    django_site: httpx.Client, pg_dsn: str
) -> None:
    answer = django_site.get("/enqueue", params={"a": 2, "b": 3})
    assert answer.status_code == 200, answer.text
    enqueued = answer.json()
    assert enqueued["status"] == "READY"
    body = _result(django_site, enqueued["id"])
    assert body["status"] == "SUCCESSFUL", body
    assert body["return_value"] == 5
    assert body["args"] == [2, 3] and body["task"] == "djsite.tasks.add_and_note"
    # the task used Django's ORM connection, from the worker, on the note the view wrote
    assert _sql(pg_dsn, "SELECT done FROM notes WHERE body = '2+3'") is True


def test_a_rolled_back_view_leaves_no_job(django_site: httpx.Client, pg_dsn: str) -> None:
    before = _sql(pg_dsn, "SELECT count(*) FROM jobs")
    answer = django_site.get("/enqueue", params={"a": 1, "b": 1, "rollback": "1"})
    assert answer.status_code == 200
    assert _sql(pg_dsn, "SELECT count(*) FROM jobs") == before
    assert _sql(pg_dsn, "SELECT count(*) FROM notes") == 0


def test_a_failing_task_reads_back_as_failed_with_its_exception(
    django_site: httpx.Client, pg_dsn: str
) -> None:
    enqueued = django_site.get("/fail", params={"reason": "on purpose"}).json()
    body = _result(django_site, enqueued["id"])
    assert body["status"] == "FAILED", body
    [error] = body["errors"]
    assert error["exception_class_path"] == "builtins.ValueError"
    assert "exploded: on purpose" in error["traceback"]
    # the task's queue and priority are the job's
    where = "SELECT queue_name || ':' || priority FROM jobs WHERE id = $1"
    row = _sql(pg_dsn, where, int(enqueued["id"]))
    assert row == "reports:10"


def _sql(dsn: str, query: str, *args: Any) -> Any:
    return asyncio.run(fetchval(dsn, query, *args))


@pytest.mark.parametrize(
    ("name", "source"),
    [("settings", "settings.py"), ("tasks", "tasks.py"), ("view", "views.py")],
)
def test_the_docs_examples_are_the_projects_code(name: str, source: str) -> None:
    """docs/django.md shows what the tests above run, word for word."""
    code = example("docs/django.md", name).code
    assert code.strip() in (SITE / "djsite" / source).read_text()
