"""Chaos in CI, on real PostgreSQL: >= 5,000 jobs, 3 worker processes, >= 10 SIGKILLs, 2
PostgreSQL restarts and >= 20 cut or dropped-reply events; no job lost, none run twice per
attempt, every result from the completing attempt, the queue empty soon after the last fault."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.chaos import run_chaos


async def test_chaos_loses_nothing_and_runs_nothing_twice(
    private_pg_server: object, tmp_path: Path
) -> None:
    dsn = await private_pg_server.create_database()  # type: ignore[attr-defined]
    report = await run_chaos(private_pg_server, dsn, tmp_path, seed=11)
    print(report)
    assert report.kills >= 10 and report.restarts == 2 and report.proxy_events >= 20, report
    assert report.completed == report.jobs, report
    assert report.duplicate_attempts == 0, report
    assert report.wrong_results == 0, report
    # a correctness bound (no job stranded), not a speed figure: the lease + 5 s
    assert report.settle_seconds <= report.settle_bound, report
