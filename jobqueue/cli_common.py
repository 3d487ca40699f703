"""What the CLI commands share: settings without tracebacks, one database connection per
command with friendly errors, and compact rendering of times and counts."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import asyncpg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from jobqueue.worker_command import settings_problems
from worker.db.connection import DatabaseUnavailable, connect
from worker.db.errors import is_transient
from worker.settings import Settings, describe_dsn, get_settings

T = TypeVar("T")
CONNECT_TIMEOUT_SECONDS = 5.0

# Piped into a file or another program, Rich would cut tables at 80 columns: a pipe gets lines
# as long as they need, unless COLUMNS says otherwise.
PIPED_WIDTH = 4096


def _console(stderr: bool = False) -> Console:
    found = Console(stderr=stderr)
    if found.is_terminal or "COLUMNS" in os.environ:
        return found
    return Console(stderr=stderr, width=PIPED_WIDTH)


console = _console()
err_console = _console(stderr=True)


def print_error(message: str) -> None:
    # escaped: database and input errors may hold text that reads as Rich markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def require_extra(module: str, extra: str, what: str) -> None:
    """End the command with one line naming the extra when `module` is not installed."""
    from importlib.util import find_spec

    from worker.errors import MissingExtra

    if find_spec(module) is None:
        fail(str(MissingExtra(what, extra)))


def load_settings() -> Settings:
    """The shared settings; a bad environment variable is named, not shown as a traceback.
    Without DB_URL, a `jobqueue dev` running on this machine is the database (said once, on
    stderr)."""
    try:
        settings = get_settings()
        if "DB_URL" in os.environ:
            return settings
        from jobqueue.dev.running import running_stack

        stack = running_stack()
        if stack is None or "DB_URL" not in stack:
            return settings
        err_console.print(
            f"[dim]DB_URL is not set: using the running `jobqueue dev` ({stack['DB_URL']})[/]",
            highlight=False,
        )
        return settings.model_copy(update={"db_url": stack["DB_URL"]})
    except ValidationError as exc:
        fail(f"invalid settings from the environment: {settings_problems(exc)}")


def _schema_missing(exc: asyncpg.PostgresError) -> bool:
    return isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedObjectError)


def run_db(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` over one connection; database problems end the command with a message."""

    async def main() -> T:
        async with database(settings) as conn:
            return await work(conn)

    try:
        return asyncio.run(main())
    except DatabaseUnavailable as exc:
        if "DB_URL" not in os.environ:
            fail(
                f"{exc}. DB_URL is not set, so the default was tried, and no `jobqueue dev` is "
                "running here: start one (`make dev`), or set DB_URL to your PostgreSQL, e.g. "
                "DB_URL=postgresql://user:pass@host:5432/jobqueue"
            )
        fail(str(exc))
    except asyncpg.PostgresError as exc:
        where = describe_dsn(settings.dsn)
        if _schema_missing(exc):
            fail(f"the database at {where} has no job-queue schema ({exc}): run `jobqueue migrate`")
        fail(f"PostgreSQL at {where} refused the request: {exc}")
    except Exception as exc:
        if not is_transient(exc):
            raise
        fail(f"lost the connection to PostgreSQL at {describe_dsn(settings.dsn)}: {exc}")


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(
        settings.dsn,
        timeout=CONNECT_TIMEOUT_SECONDS,
        **settings.api.timeouts.connect_kwargs({"application_name": "jobqueue-cli"}),
    )
    try:
        yield conn
    finally:
        await conn.close()


def parse_json_object(text: str, option: str) -> dict[str, Any]:
    """A JSON object given on the command line; errors name the option."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON ({exc})", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter(
            'must be a JSON object, e.g. \'{"to": "user@example.com"}\'', param_hint=option
        )
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))
