"""Structured logs: one JSON object per line, with the record's `extra` fields kept."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# kopf adds its whole settings object to every record: not worth a log line's bytes
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "settings"}


class JsonFormatter(logging.Formatter):
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


def configure(debug: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # kopf narrates every watch event at DEBUG; keep its INFO and up unless debugging
    logging.getLogger("kopf").setLevel(logging.DEBUG if debug else logging.INFO)
    # ... and says "Handler succeeded" at INFO for every watch event of every Deployment
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
