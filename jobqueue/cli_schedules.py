"""`jobqueue schedules list|add|pause|resume|delete`: periodic jobs from a terminal, straight
over one database connection (the API's POST /schedules makes the same checks)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from jobqueue.cli_checks import checked_job
from jobqueue.cli_common import console, fail, load_settings, parse_json_object, print_json, run_db
from jobqueue.cli_jobs import JsonFlag
from worker.ages import format_age
from worker.db import schedules
from worker.db.schedules import JobSpec, Schedule, ScheduleDef
from worker.ticks import InvalidSchedule, new_timing

schedules_app = typer.Typer(
    help="Periodic jobs: cron expressions or fixed intervals.", no_args_is_help=True
)

OPTION_OF_FIELD = {"cron": "--cron", "every_seconds": "--every", "timezone": "--timezone"}


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    return f"in {format_age(seconds)}" if seconds >= 0 else f"{format_age(-seconds)} ago"


def schedules_table(found: list[Schedule]) -> Table:
    now = datetime.now(UTC)
    table = Table("NAME", "WHEN", "JOB", "QUEUE", "NEXT", "LAST", "LAST JOB", "STATE", "SOURCE")
    for s in found:
        when = s.cron if s.cron is not None else f"every {s.every_seconds:g}s"
        if s.cron is not None and s.timezone != "UTC":
            when += f" ({s.timezone})"
        last_job = "-" if s.last_job_id is None else f"{s.last_job_id} {s.last_job_status or ''}"
        table.add_row(
            escape(s.name),
            escape(when),
            escape(str(s.job.get("job_type", "?"))),
            escape(str(s.job.get("queue_name", "default"))),
            _when(s.next_run_at, now),
            _when(s.last_run_at, now),
            last_job.strip(),
            "[yellow]paused[/]" if s.paused else "active",
            s.source,
        )
    return table


@schedules_app.command("list")
def list_schedules(as_json: JsonFlag = False) -> None:
    """Every schedule, with its next and last run and the last job's status."""
    found = run_db(load_settings(), schedules.list_schedules)
    if as_json:
        print_json([asdict(s) for s in found])
    elif not found:
        console.print("no schedules")
    else:
        console.print(schedules_table(found))


@schedules_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The schedule's name (adding it again replaces it).")],
    job_type: Annotated[
        str, typer.Argument(metavar="JOB_TYPE", help="The handler each tick runs.")
    ],
    cron: Annotated[
        str | None, typer.Option(help='Five fields, e.g. "*/5 * * * *" (quote it).')
    ] = None,
    every: Annotated[float | None, typer.Option(help="Or a fixed interval, in seconds.")] = None,
    timezone: Annotated[str, typer.Option(help="The cron expression's IANA time zone.")] = "UTC",
    payload: Annotated[str, typer.Option(metavar="JSON", help="Each job's payload.")] = "{}",
    queue: Annotated[str, typer.Option("--queue", "-q")] = "default",
    priority: Annotated[int, typer.Option("--priority", "-p")] = 0,
    max_tries: Annotated[int, typer.Option(min=1)] = 3,
    tick_field: Annotated[
        str | None, typer.Option(help="A payload key that receives the tick's time.")
    ] = None,
    catch_up: Annotated[
        str,
        typer.Option(
            help="After every worker was down: 'one' job for the missed ticks, or 'skip'."
        ),
    ] = "one",
    as_json: JsonFlag = False,
) -> None:
    """Add or replace a schedule. Example: jobqueue schedules add nightly report_generation
    --cron "0 2 * * *" --timezone Europe/Paris --payload '{"report_type": "daily"}'."""
    if catch_up not in ("one", "skip"):
        raise typer.BadParameter("must be 'one' or 'skip'", param_hint="'--catch-up'")
    try:
        timing = new_timing(cron, every, timezone)
    except InvalidSchedule as exc:
        raise typer.BadParameter(
            exc.problem, param_hint=f"'{OPTION_OF_FIELD[exc.field]}'"
        ) from None
    payload_object = parse_json_object(payload, "'--payload'")
    # each tick's job is checked as POST /jobs checks one (its payload model too): it would
    # fail for good otherwise
    checked_job(job_type, payload_object, queue_name=queue, priority=priority, max_tries=max_tries)
    mode: Literal["one", "skip"] = "one" if catch_up == "one" else "skip"
    definition = ScheduleDef(
        name=name,
        timing=timing,
        job=JobSpec(job_type, payload_object, queue, priority, max_tries, tick_field),
        catch_up=mode,
    )

    async def write(conn: schedules.Executor) -> tuple[bool, Schedule | None]:
        created = await schedules.upsert_schedule(conn, definition, source="cli")
        return created, await schedules.get_schedule(conn, name)

    created, shown = run_db(load_settings(), write)
    assert shown is not None
    if as_json:
        print_json({**asdict(shown), "created": created})
        return
    verb = "added" if created else "replaced"
    when = _when(shown.next_run_at, datetime.now(UTC))
    console.print(f"{verb} schedule [bold]{escape(name)}[/]; next run {when}")


def _pause(name: str, paused: bool) -> None:
    shown = run_db(load_settings(), lambda conn: schedules.set_paused(conn, name, paused))
    if shown is None:
        fail(f"no schedule named {name!r}")
    console.print(f"schedule {escape(name)} is {'paused' if paused else 'active'}")


@schedules_app.command("pause")
def pause(name: Annotated[str, typer.Argument(help="The schedule.")]) -> None:
    """Enqueue nothing more until resumed."""
    _pause(name, True)


@schedules_app.command("resume")
def resume(name: Annotated[str, typer.Argument(help="The schedule.")]) -> None:
    """Fire again from the next tick (ticks that fell in the pause are not run)."""
    _pause(name, False)


@schedules_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The schedule.")]) -> None:
    """Delete a schedule; the jobs it enqueued stay."""
    if not run_db(load_settings(), lambda conn: schedules.delete_schedule(conn, name)):
        fail(f"no schedule named {name!r}")
    console.print(f"deleted schedule {escape(name)}")
