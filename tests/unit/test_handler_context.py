"""Handlers get the job's fields, a logger and their config, never the database URL or token."""

from __future__ import annotations

from dataclasses import fields

from worker.handlers import HandlerConfig, JobContext
from worker.settings import Settings


def test_the_handler_config_holds_no_secret_of_the_system() -> None:
    settings = Settings(
        db_url="u:secret-db-password@db:5432/q", api_token="secret-token", images_dir="/img"
    )
    config = HandlerConfig.from_settings(settings)
    assert config.images_dir == "/img"
    names = {f.name for f in fields(HandlerConfig)} | {f.name for f in fields(JobContext)}
    assert not names & {"db_url", "dsn", "api_token", "settings"}
    assert "secret" not in repr(config)


def test_the_logger_is_named_after_the_job_type() -> None:
    ctx = JobContext(1, "emails", "default", 1, 3, HandlerConfig())
    assert ctx.logger.name == "worker.handlers.emails"
