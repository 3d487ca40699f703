"""One logging setup for every process (worker, API, controller, CLI, dev stack): plain lines
or one JSON object per line, chosen by JOBQUEUE_LOG_FORMAT. Without it each process keeps the
format it always had: JSON for the controller (its logs feed cluster tooling), plain otherwise."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["plain", "json"]
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# kopf adds its whole settings object to every record: not worth a log line's bytes
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "settings"}


class JsonFormatter(logging.Formatter):
    """The record's `extra` fields are kept as keys of the object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and not key.startswith("k8s_"):
                entry[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(
    debug: bool, log_format: LogFormat | None, default: LogFormat = "plain", quiet: bool = False
) -> None:
    """Replace the root logger's handlers with one stderr handler in the chosen format. `quiet`
    (the CLI's short commands) keeps warnings and up unless debugging: their output is the
    answer, not a narration."""
    handler = logging.StreamHandler()
    chosen = log_format or default
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
