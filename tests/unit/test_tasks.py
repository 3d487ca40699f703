"""Typed tasks (jobqueue.task) and the test helpers (jobqueue.testing), with no database: what
a declaration accepts and refuses, what the handler receives, how a payload is refused at
enqueue, and how run_task and eager mode report a run."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic's requirement before Python 3.12

import jobqueue
from jobqueue.testing import TaskFailed, eager, run_task, run_task_async
from worker.handlers.base import HandlerRegistry, registry


class Thumbnail(BaseModel):
    url: str
    width: int = Field(128, gt=0, le=4096)


@dataclasses.dataclass
class Resize:
    path: str
    scale: float = 1.0


class Note(TypedDict):
    text: str


@pytest.fixture
def local() -> HandlerRegistry:
    return HandlerRegistry()


def test_the_handler_gets_the_model_and_its_result_is_stored_as_json() -> None:
    @jobqueue.task(name="t_model")
    async def t_model(payload: Thumbnail, ctx: jobqueue.JobContext) -> Thumbnail:
        assert isinstance(payload, Thumbnail) and ctx.job_type == "t_model"
        return payload.model_copy(update={"width": payload.width * 2})

    run = run_task(t_model, Thumbnail(url="u", width=3))
    assert (run.status, run.result) == ("completed", {"url": "u", "width": 6})
    registry.unregister("t_model")


@pytest.mark.parametrize("kind", ["dataclass", "typeddict", "dict", "none"])
def test_payload_types_and_call_shapes(kind: str, local: HandlerRegistry) -> None:
    seen: list[Any] = []
    if kind == "dataclass":

        def handler(payload: Resize) -> None:
            seen.append(payload)

        payload: Any = Resize(path="a.png")
    elif kind == "typeddict":

        def handler(payload: Note, ctx: jobqueue.JobContext) -> None:  # type: ignore[misc]
            seen.append(payload)

        payload = {"text": "hi"}
    elif kind == "dict":

        async def handler(payload: dict[str, Any], ctx: jobqueue.JobContext) -> None:  # type: ignore[misc]
            seen.append(payload)

        payload = {"any": ["thing"]}
    else:

        def handler(ctx: jobqueue.JobContext) -> None:  # type: ignore[misc]
            seen.append(ctx.job_id)

        payload = None
    declared = jobqueue.task(handler, name=f"shape_{kind}", registry=local)
    job = declared.prepare(payload)
    spec = local.get(f"shape_{kind}")
    assert spec is not None
    ctx = jobqueue.JobContext(7, f"shape_{kind}", "default", 1, 3)
    outcome = spec.handler(job.payload, ctx)
    if asyncio.iscoroutine(outcome):
        asyncio.run(outcome)
    expected = {"dataclass": Resize("a.png"), "typeddict": {"text": "hi"}, "none": 7}
    assert seen == [expected.get(kind, payload)]


def test_a_payload_that_fails_the_model_is_refused_at_enqueue_naming_the_field() -> None:
    @jobqueue.task(name="t_refuse", registry=HandlerRegistry())
    def t_refuse(payload: Thumbnail) -> None: ...

    with pytest.raises(jobqueue.InvalidJob) as caught:
        t_refuse.prepare({"url": "u", "width": 0})
    assert caught.value.field == "payload.width"
    assert "greater than 0" in caught.value.problem
    with pytest.raises(jobqueue.InvalidJob) as missing:
        t_refuse.prepare({})
    assert missing.value.field == "payload.url"
    # the model is also the job type's payload check (what the API and the CLI run)
    assert t_refuse.name == "t_refuse"


def test_the_model_is_the_registrys_payload_check(local: HandlerRegistry) -> None:
    jobqueue.task(lambda_like(Thumbnail), name="checked", registry=local)
    check = local.payload_check("checked")
    assert check is not None
    from worker.handlers.payload import InvalidPayload

    with pytest.raises(InvalidPayload) as caught:
        check({"url": "u", "width": 99999})
    assert caught.value.field == "width"


def lambda_like(model: type) -> Any:
    """A handler whose payload is annotated with `model`."""

    def handler(payload: Any) -> None:
        return None

    handler.__annotations__ = {"payload": model, "return": None}
    return handler


def test_two_tasks_with_one_name_is_an_error_naming_both_places(local: HandlerRegistry) -> None:
    def first(payload: Thumbnail) -> None: ...

    def second(payload: Thumbnail) -> None: ...

    jobqueue.task(first, name="dup", registry=local)
    with pytest.raises(jobqueue.TaskConflict) as caught:
        jobqueue.task(second, name="dup", registry=local)
    message = str(caught.value)
    assert f"{__file__}:{first.__code__.co_firstlineno}" in message
    assert f"{__file__}:{second.__code__.co_firstlineno}" in message
    # the same declaration again (a module imported under two names) replaces itself
    jobqueue.task(first, name="dup", registry=local)


def test_a_task_may_not_take_a_string_registered_name(local: HandlerRegistry) -> None:
    @local.register("legacy")
    async def legacy(payload: dict[str, Any], ctx: jobqueue.JobContext) -> None: ...

    with pytest.raises(jobqueue.TaskConflict, match=r"registry\.register"):
        jobqueue.task(lambda_like(Thumbnail), name="legacy", registry=local)


def test_declaration_errors_are_raised_at_import(local: HandlerRegistry) -> None:
    with pytest.raises(TypeError, match="pydantic model, a dataclass, a TypedDict or a dict"):
        jobqueue.task(lambda_like(int), name="bad_type", registry=local)

    def three(a: Thumbnail, b: jobqueue.JobContext, c: int) -> None: ...

    with pytest.raises(TypeError, match="takes"):
        jobqueue.task(three, name="three", registry=local)
    with pytest.raises(jobqueue.InvalidJob, match="max_tries"):
        jobqueue.task(lambda_like(Thumbnail), name="bad_default", registry=local, max_tries=0)


def test_task_defaults_and_enqueue_options_are_one_set(local: HandlerRegistry) -> None:
    declared = jobqueue.task(
        lambda_like(Thumbnail),
        name="defaults",
        registry=local,
        queue_name="images",
        max_tries=5,
        timeout_seconds=30,
    )
    job = declared.prepare({"url": "u"}, priority=3, unique_key="u")
    assert (job.options.queue_name, job.options.max_tries) == ("images", 5)
    assert (job.options.priority, job.options.unique_key) == (3, "u")
    assert job.options.timeout_seconds is None  # the task's timeout is its handler's
    spec = local.get("defaults")
    assert spec is not None and spec.timeout_seconds == 30
    with pytest.raises(jobqueue.InvalidJob, match="is not an enqueue option"):
        declared.prepare({"url": "u"}, queue="x")  # type: ignore[call-arg]


# --- jobqueue.testing


@jobqueue.task(name="t_steps")
async def t_steps(payload: Thumbnail, ctx: jobqueue.JobContext) -> dict[str, Any]:
    ctx.progress(0.5, "half way")
    ctx.logger.warning("resizing %s", payload.url)
    if payload.url == "snooze":
        raise jobqueue.Snooze(30)
    if payload.url == "bad":
        raise jobqueue.PermanentError("cannot fetch")
    if payload.url == "flaky":
        raise ConnectionError("try again")
    if payload.url == "nan":
        return {"width": float("nan")}
    return {"width": payload.width}


def test_run_task_reports_progress_logs_and_the_result() -> None:
    run = run_task(t_steps, Thumbnail(url="ok", width=64))
    assert (run.status, run.result, run.error) == ("completed", {"width": 64}, None)
    assert run.progress == [(0.5, "half way")]
    assert run.logs == [("WARNING", "resizing ok")]


@pytest.mark.parametrize(
    ("url", "attempt", "status", "error"),
    [
        ("snooze", 1, "snoozed", None),
        ("bad", 1, "failed", "permanent error: cannot fetch"),
        ("flaky", 1, "retry", "ConnectionError: try again"),
        ("flaky", 3, "failed", "ConnectionError: try again"),
        ("nan", 1, "failed", "permanent error: handler returned a result that is not JSON"),
    ],
)
def test_run_task_ends_as_the_attempt_would(
    url: str, attempt: int, status: str, error: str | None
) -> None:
    run = run_task(t_steps, {"url": url}, attempt=attempt, max_tries=3)
    assert run.status == status
    assert run.error is None if error is None else (run.error or "").startswith(error)
    if url == "snooze":
        assert run.snooze_seconds == 30
    if url == "flaky":
        assert isinstance(run.exception, ConnectionError)
        # as a worker stores it: from the task's own frame, without the helpers' or adapter's
        assert (run.traceback or "").splitlines()[1].endswith("in t_steps"), run.traceback


def test_a_sync_task_runs_off_the_event_loop() -> None:
    threads: list[bool] = []

    @jobqueue.task(name="t_sync", registry=registry)
    def t_sync(payload: Thumbnail, ctx: jobqueue.JobContext) -> int:
        try:
            asyncio.get_running_loop()
            threads.append(False)
        except RuntimeError:
            threads.append(True)
        ctx.progress(1.0)
        return payload.width

    run = run_task(t_sync, Thumbnail(url="u", width=5))
    assert (run.status, run.result, run.progress, threads) == (
        "completed",
        5,
        [(1.0, None)],
        [True],
    )
    registry.unregister("t_sync")


async def test_run_task_async_in_an_async_test() -> None:
    run = await run_task_async(t_steps, Thumbnail(url="ok", width=8))
    assert run.result == {"width": 8}
    with pytest.raises(RuntimeError, match="await run_task_async"):
        run_task(t_steps, Thumbnail(url="ok"))


@jobqueue.task(name="t_parent")
async def t_parent(payload: Thumbnail, ctx: jobqueue.JobContext) -> int:
    # a task that enqueues another: in eager mode the child runs first, in-process
    return await t_steps.enqueue(None, payload.model_copy(update={"width": 1}))


async def test_eager_mode_runs_enqueued_jobs_at_once() -> None:
    with eager() as runs:
        first = await t_parent.enqueue(None, Thumbnail(url="ok", width=2))
        await jobqueue.enqueue(None, "t_steps", {"url": "ok", "width": 4})
    assert [(r.job_type, r.status) for r in runs.runs] == [
        ("t_steps", "completed"),
        ("t_parent", "completed"),
        ("t_steps", "completed"),
    ]
    assert runs.of(t_parent)[0].job_id == first
    assert runs.of("t_steps")[1].result == {"width": 4}


async def test_eager_mode_tries_again_then_raises_when_a_job_fails_for_good() -> None:
    with eager() as runs:
        with pytest.raises(TaskFailed, match="ConnectionError: try again"):
            await t_steps.enqueue(None, {"url": "flaky"}, max_tries=2)
    assert [r.status for r in runs.runs] == ["retry", "failed"]
    with eager(propagate=False) as quiet:
        await t_steps.enqueue(None, {"url": "bad"})
    assert quiet.runs[0].status == "failed"
    # outside the block, enqueue needs a connection again
    with pytest.raises(TypeError, match="asyncpg connection"):
        await t_steps.enqueue(object(), {"url": "ok"})


async def test_eager_mode_checks_payloads_as_enqueue_does() -> None:
    with eager() as runs, pytest.raises(jobqueue.InvalidJob, match=r"payload\.width"):
        await jobqueue.enqueue(None, "t_steps", {"url": "ok", "width": -1})
    assert runs.runs == []


def test_a_sync_task_times_out_as_in_a_worker() -> None:
    # jobqueue.testing runs a plain `def` through the worker's own thread pool: the attempt
    # ends at its timeout, and the function, which Python cannot stop, sees ctx.cancelled
    seen: dict[str, Any] = {}
    returned = threading.Event()

    @jobqueue.task(name="t_sync_slow", registry=registry, timeout_seconds=0.2)
    def t_sync_slow(payload: Thumbnail, ctx: jobqueue.JobContext) -> int:
        seen["thread"] = threading.current_thread().name
        ctx.logger.info("started %s", payload.url)
        deadline = time.monotonic() + 10
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["cancelled"] = ctx.cancelled
        returned.set()
        return payload.width

    try:
        run = run_task(t_sync_slow, Thumbnail(url="u", width=5))
        assert returned.wait(10)
    finally:
        registry.unregister("t_sync_slow")
    assert (run.status, run.error, run.result) == ("retry", "timed out after 0.2s", None)
    assert run.logs == [("INFO", "started u")]
    assert seen == {"thread": seen["thread"], "cancelled": True}
    assert seen["thread"].startswith("jobqueue-handler")
