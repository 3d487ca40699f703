"""The handler registry: built-ins are registered, and users' modules add their own."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit.handler_support import job_context
from worker.handlers import PermanentError, registry


def test_builtins_are_registered() -> None:
    assert {"noop", "emails", "report_generation", "images_processing"} <= set(registry.job_types())
    for job_type in ("emails", "report_generation", "images_processing"):
        spec = registry.get(job_type)
        assert spec is not None and spec.timeout_seconds, job_type


async def test_noop_returns_an_empty_object(tmp_path: Path) -> None:
    spec = registry.get("noop")
    assert spec is not None
    assert await spec.handler({"anything": 1}, job_context(tmp_path)) == {}


async def test_users_module_registers_its_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_handlers_for_test.py").write_text(
        textwrap.dedent(
            """
            from worker.handlers import PermanentError, registry

            @registry.register("test_greeting", timeout_seconds=7)
            async def greet(payload, ctx):
                if "name" not in payload:
                    raise PermanentError("name is required")
                return {"greeting": f"hello {payload['name']}", "job": ctx.job_id}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry.load_modules(["my_handlers_for_test"])
        spec = registry.get("test_greeting")
        assert spec is not None and spec.timeout_seconds == 7
        ctx = job_context(tmp_path, job_id=42)
        assert await spec.handler({"name": "ann"}, ctx) == {"greeting": "hello ann", "job": 42}
        with pytest.raises(PermanentError, match="name is required"):
            await spec.handler({}, ctx)
    finally:
        registry.unregister("test_greeting")
    assert registry.get("test_greeting") is None


def test_a_module_that_cannot_be_imported_names_the_setting() -> None:
    with pytest.raises(ImportError, match="JOBQUEUE_HANDLER_MODULES names 'no_such_handlers_mod'"):
        registry.load_modules(["no_such_handlers_mod"])
