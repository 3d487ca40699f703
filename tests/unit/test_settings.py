"""Settings per component: one reading of the environment, one part per component, the seed's
names still working, and no secret of the system in what handlers get."""

from __future__ import annotations

import inspect
import typing
from dataclasses import fields

import pytest

from controller.main import run_controller
from controller.main import serve as serve_controller
from worker.api.app import create_app
from worker.api.server import serve as serve_api
from worker.handlers import JobContext
from worker.runtime.main import WorkerProcess, run_worker
from worker.settings import (
    ApiSettings,
    ControllerSettings,
    HandlerSettings,
    Part,
    Settings,
    SmtpSettings,
    WorkerSettings,
)

# Names more than one part reads, each from the same variable.
SHARED = {
    "handler_modules": 2,
    "drain_timeout": 2,
    "debug": 3,
    # one TracingSettings part, held by the worker's part and by the API's
    "otel": 2,
    "otel_traces_exporter": 2,
    "otel_configure": 2,
    # the handlers' limits: the worker's handlers apply them, the API checks them at enqueue
    "disabled_handlers": 2,
    "images_max_pixels": 2,
    "emails_max_recipients": 2,
    "emails_allowed_domains": 2,
    # every component's pools have the same statement and command timeouts
    "db_statement_timeout": 3,
    "db_command_timeout": 3,
    "db_acquire_timeout": 3,
}


def test_the_seeds_variables_reach_the_worker_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "app:secret@db:5433/queue")
    monkeypatch.setenv("MAX_CONCURRENT_JOBS", "7")
    monkeypatch.setenv("WORKER_QUEUES", "emails, reports")
    monkeypatch.setenv("POLL_INTERVAL", "0.5")
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("JOBQUEUE_SMTP_HOST", "mail.example")
    settings = Settings()
    assert settings.dsn == "postgresql://app:secret@db:5433/queue"
    worker = settings.worker
    assert (worker.max_concurrent_jobs, worker.worker_queues, worker.poll_interval) == (
        7,
        ["emails", "reports"],
        0.5,
    )
    assert worker.handlers.smtp.smtp_host == "mail.example"
    assert settings.debug and settings.api.debug and settings.controller.debug


def test_flat_names_go_to_the_part_that_declares_them() -> None:
    settings = Settings(
        db_url="u:p@h:5432/d",
        api_token="t0ken",
        lease_seconds=2,
        images_dir="/img",
        smtp_port=2525,
        controller_interval=0.5,
        handler_modules=["mine"],
        drain_timeout=3,
    )
    assert settings.api.api_token == "t0ken"
    assert settings.worker.lease_seconds == 2
    assert settings.worker.handlers.images_dir == "/img"
    assert settings.worker.handlers.smtp.smtp_port == 2525
    assert settings.controller.controller_interval == 0.5
    # a name two parts read goes to both
    assert settings.api.handler_modules == settings.worker.handler_modules == ["mine"]
    assert settings.api.drain_timeout == settings.worker.drain_timeout == 3
    # what was set explicitly stays visible per part (the dev stack and the worker ask)
    assert "images_dir" in settings.worker.handlers.model_fields_set
    assert "api_host" not in settings.api.model_fields_set


def test_a_part_can_be_given_whole() -> None:
    worker = WorkerSettings(max_concurrent_jobs=9)
    assert Settings(worker=worker).worker is worker


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_JOBS", "many")
    with pytest.raises(ValueError, match="MAX_CONCURRENT_JOBS"):
        Settings()


def test_a_part_variable_named_like_the_part_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # a stray WORKER or API variable in a pod's environment must not be parsed as a part
    monkeypatch.setenv("WORKER", "not json")
    monkeypatch.setenv("API", "not json")
    assert Settings(api_port=8002).api.api_port == 8002


def _leaf_names(part: type[Part]) -> list[str]:
    names = []
    for name, field in part.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, Part):
            names += _leaf_names(kind)
        else:
            names.append(name)
    return names


def test_every_name_has_one_home_but_the_shared_ones() -> None:
    counts: dict[str, int] = {}
    for name in _leaf_names(Settings):
        counts[name] = counts.get(name, 0) + 1
    repeated = {name: n for name, n in counts.items() if n > 1}
    assert repeated == SHARED


def test_what_handlers_get_holds_no_secret_of_the_system() -> None:
    config = HandlerSettings()
    names = set(_leaf_names(HandlerSettings)) | {f.name for f in fields(JobContext)}
    assert not names & {"db_url", "dsn", "api_token", "settings"}
    assert isinstance(config.smtp, SmtpSettings)
    ctx = JobContext(1, "emails", "default", 1, 3)
    assert ctx.logger.name == "worker.handlers.emails"


@pytest.mark.parametrize(
    ("entry", "part"),
    [
        (run_worker, WorkerSettings),
        (WorkerProcess.__init__, WorkerSettings),
        (create_app, ApiSettings),
        (serve_api, ApiSettings),
        (run_controller, ControllerSettings),
        (serve_controller, ControllerSettings),
    ],
)
def test_each_entry_point_takes_only_its_part_and_a_dsn(entry: object, part: type) -> None:
    hints = typing.get_type_hints(entry)
    assert hints["settings"] is part
    assert hints["dsn"] is str
    assert "dsn" in inspect.signature(entry).parameters  # type: ignore[arg-type]
