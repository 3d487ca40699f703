"""The built-in handlers' settings (folders and SMTP): read from the environment on first use,
or set by the worker at start. User handlers never see them: JobContext carries no settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from worker.settings import HandlerSettings

_current: HandlerSettings | None = None


def handler_settings() -> HandlerSettings:
    global _current
    if _current is None:
        _current = HandlerSettings()
    return _current


def configure(settings: HandlerSettings) -> None:
    """The worker's own part of the settings, before it takes any job."""
    global _current
    _current = settings


@contextmanager
def configured(settings: HandlerSettings) -> Iterator[HandlerSettings]:
    """These settings for the duration of the block (tests)."""
    global _current
    before, _current = _current, settings
    try:
        yield settings
    finally:
        _current = before
