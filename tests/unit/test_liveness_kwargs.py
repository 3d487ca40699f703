"""The lock connection's deadlines (worker.runtime.liveness.lock_connect_kwargs): the pool's,
with statement_timeout never above the bound, and never off."""

from __future__ import annotations

from worker.runtime.liveness import lock_connect_kwargs
from worker.settings import DatabaseTimeouts


def test_the_statement_deadline_is_bounded_and_never_off() -> None:
    for configured, expected in ((30.0, "5000"), (2.0, "2000"), (0.0, "5000")):
        pool = DatabaseTimeouts(db_statement_timeout=configured).connect_kwargs({"a": "b"})
        lock = lock_connect_kwargs(pool)
        assert lock["server_settings"] == {**pool["server_settings"], "statement_timeout": expected}
        assert lock["command_timeout"] == pool["command_timeout"]
        assert pool["server_settings"]["statement_timeout"] == str(int(configured * 1000))
