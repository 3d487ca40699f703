"""Periodic jobs: GET/POST /schedules, GET/DELETE /schedules/{name}, and pause and resume.
Workers fire them (worker.runtime.scheduler); see docs/scheduling.md."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Response

from worker.api.auth import FIELD_ERRORS, any_token, queue_router
from worker.api.models import JobIn
from worker.api.models_schedules import SCHEDULE_EXAMPLE, ScheduleIn, ScheduleOut, SchedulesOut
from worker.api.state import State
from worker.api.validation import InputError
from worker.db import schedules
from worker.db.schedules import JobSpec, ScheduleDef
from worker.settings import ApiSettings
from worker.ticks import InvalidSchedule, new_timing

ScheduleName = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^[^\x00]+$", description="The schedule.")
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No schedule has this name."}}


def _definition(body: ScheduleIn, state: State) -> ScheduleDef:
    """The schedule to store, or an InputError naming the field: the timing (cron syntax, time
    zone) and the job, which gets the checks POST /jobs makes (known type, payload model)."""
    try:
        timing = new_timing(body.cron, body.every_seconds, body.timezone)
    except InvalidSchedule as exc:
        raise InputError(422, ("body", exc.field), exc.problem, "value_error") from None
    job = dict(body.job)  # JobSpec's fields: all but tick_field are a POST /jobs body's too
    tick_field = job.pop("tick_field")
    state.enqueue.prepare(JobIn(**job), ("body", "job"))
    spec = JobSpec(**job, tick_field=tick_field)
    return ScheduleDef(name=body.name, timing=timing, job=spec, catch_up=body.catch_up)


def _missing(name: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no schedule named {name!r}")


def schedules_router(settings: ApiSettings) -> APIRouter:
    router = queue_router(any_token(settings), "schedules", FIELD_ERRORS)

    @router.get("/schedules", response_model=SchedulesOut, summary="Every schedule")
    async def list_all(state: State) -> Any:
        found = await schedules.list_schedules(state.require_read_pool())
        return {"schedules": [asdict(s) for s in found]}

    @router.post(
        "/schedules",
        response_model=ScheduleOut,
        status_code=201,
        summary="Create a schedule, or replace the one of the same name",
        responses={200: {"model": ScheduleOut, "description": "Replaced."}},
    )
    async def create(
        body: Annotated[ScheduleIn, Body(openapi_examples={"cron": {"value": SCHEDULE_EXAMPLE}})],
        response: Response,
        state: State,
    ) -> Any:
        definition = _definition(body, state)
        pool = state.require_pool()
        cap = state.settings.max_schedules
        if await schedules.count_other_schedules(pool, body.name) >= cap:
            raise InputError(
                422,
                ("body", "name"),
                f"there are {cap} schedules already, the most JOBQUEUE_MAX_SCHEDULES allows: "
                "delete one, or replace one by its name",
                "too_many_schedules",
            )
        if not await schedules.upsert_schedule(pool, definition):
            response.status_code = 200
        return await schedules.get_schedule(pool, body.name)

    @router.get(
        "/schedules/{name}", response_model=ScheduleOut, summary="One schedule", responses=NOT_FOUND
    )
    async def show(name: ScheduleName, state: State) -> Any:
        found = await schedules.get_schedule(state.require_pool(), name)
        if found is None:
            raise _missing(name)
        return found

    @router.delete(
        "/schedules/{name}",
        status_code=204,
        summary="Delete a schedule (jobs it enqueued stay)",
        responses=NOT_FOUND,
    )
    async def delete(name: ScheduleName, state: State) -> Response:
        if not await schedules.delete_schedule(state.require_pool(), name):
            raise _missing(name)
        return Response(status_code=204)

    def setting_paused(paused: bool) -> Callable[..., Awaitable[Any]]:
        async def set_paused(name: ScheduleName, state: State) -> Any:
            found = await schedules.set_paused(state.require_pool(), name, paused)
            if found is None:
                raise _missing(name)
            return found

        return set_paused

    for action, paused, summary in (
        ("pause", True, "Enqueue no more jobs until resumed"),
        ("resume", False, "Fire again from the next tick (ticks in the pause are not run)"),
    ):
        router.add_api_route(
            f"/schedules/{{name}}/{action}",
            setting_paused(paused),
            methods=["POST"],
            name=action,  # the operation's id, as a function of that name would give
            response_model=ScheduleOut,
            summary=summary,
            responses=NOT_FOUND,
        )

    return router
