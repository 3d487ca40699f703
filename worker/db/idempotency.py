"""The jobs that hold some idempotency keys, as the API compares them with a request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from worker.db import sql_files
from worker.db.jobs import Executor

_sql = sql_files.statements("idempotency")


@dataclass(frozen=True)
class KeyHolder:
    id: int
    job_type: str
    queue_name: str
    payload: dict[str, Any]


async def jobs_holding(executor: Executor, keys: Sequence[str]) -> dict[str, KeyHolder]:
    rows = await executor.fetch(_sql("select_jobs_by_idempotency_keys"), list(keys))
    return {
        row["idempotency_key"]: KeyHolder(
            row["id"],
            row["job_type"],
            row["queue_name"],
            json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"],
        )
        for row in rows
    }
