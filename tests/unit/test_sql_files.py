"""The statements' loader, and the rules every statement of worker/db/sql/*.sql keeps: run as
written (no text pasted in), parameters named, and notifications on the channels the Python
side listens to. tests/integration/test_sql_prepare.py has PostgreSQL check the same files."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from worker.db import NEW_JOB_CHANNEL, sql_files
from worker.db.startups import WORKER_STARTED_CHANNEL
from worker.db.waits import FINISHED_CHANNEL
from worker.runtime.waker import CANCEL_CHANNEL

SQL_DIR = resources.files("worker.db").joinpath("sql")
MIGRATIONS = resources.files("worker.db").joinpath("migrations")
STEMS = sorted(p.name.removesuffix(".sql") for p in SQL_DIR.iterdir() if p.name.endswith(".sql"))
# Each channel the SQL notifies, and the Python constant its listeners use.
CHANNELS = {NEW_JOB_CHANNEL, CANCEL_CHANNEL, FINISHED_CHANNEL, WORKER_STARTED_CHANNEL}
NOTIFY = re.compile(r"pg_notify\(\s*([^,]*),")


def _sql_texts() -> list[tuple[str, str]]:
    files = [SQL_DIR.joinpath(f"{stem}.sql") for stem in STEMS]
    files += sorted((p for p in MIGRATIONS.iterdir() if p.name.endswith(".sql")), key=str)
    return [(f.name, f.read_text()) for f in files]


def _code(statement: str) -> str:
    """The statement without its comments (none of ours has `--` inside a string)."""
    return re.sub(r"--[^\n]*", "", statement)


@pytest.mark.parametrize("stem", STEMS)
def test_statements_are_the_files_text_as_written(stem: str) -> None:
    written = SQL_DIR.joinpath(f"{stem}.sql").read_text()
    for name, statement in sql_files.load(stem).items():
        assert statement in written, f"{stem}.sql {name}"
        # a `:NAME` outside a `::` cast is a placeholder that something would have to fill in
        assert not re.search(r"(?<![:\w]):[A-Za-z_]", _code(statement)), f"{stem}.sql {name}"


@pytest.mark.parametrize("stem", STEMS)
def test_every_parameter_is_named_on_the_params_line(stem: str) -> None:
    for name, statement in sql_files.load(stem).items():
        numbers = {int(n) for n in re.findall(r"\$(\d+)", _code(statement))}
        declared = sql_files.declared_parameters(statement)
        assert numbers == set(range(1, len(declared) + 1)), (
            f"{stem}.sql {name}: uses {sorted(numbers)}, `-- params:` names {declared}"
        )


def test_every_notification_names_a_channel_constant() -> None:
    """The channels are written literally in SQL; each must be one a listener in Python uses,
    so that a renamed constant or a misspelt channel fails here, not as a silent worker."""
    for file_name, text in _sql_texts():
        for argument in NOTIFY.findall(_code(text)):
            literal = re.fullmatch(r"'(\w+)'", argument.strip())
            assert literal is not None, f"{file_name}: pg_notify({argument}, ...) is no literal"
            assert literal.group(1) in CHANNELS, f"{file_name}: unknown channel {argument}"


def test_the_new_job_channel_is_notified_where_jobs_become_ready() -> None:
    notifying = {
        name
        for stem in STEMS
        for name, statement in sql_files.load(stem).items()
        if f"pg_notify('{NEW_JOB_CHANNEL}'," in statement
    }
    assert notifying == {
        "jobs_retry_batch",
        "release_jobs",
        "release_unknown_jobs",
        "jobs_retry_failed_matching",
        "retry_job",
        "rescue_expired",
        "rescue_dead_workers",
    }


# Text that several statements share, written out in each (a statement runs as written): the
# statements, and where the shared text starts and ends in each (None: the statement's end).
SHARED = [
    ("attempts", ("insert_job_errors", "insert_job_logs"), "WITH held", "\n),"),
    ("bulk", ("jobs_retry_batch", "jobs_cancel_batch"), "WITH picked", "\n),"),
    ("claims", ("complete_jobs", "fail_jobs", "release_jobs"), "    FROM acks", "    RETURNING"),
    ("claims", ("complete_jobs", "fail_jobs"), "SELECT count(*) AS written", None),
    ("claims", ("release_jobs", "release_unknown_jobs"), "SELECT count(*) AS released", None),
    ("jobs", ("insert_jobs", "insert_jobs_brief", "insert_planned_jobs"), "WITH input", "\n),"),
    ("jobs", ("insert_jobs", "insert_jobs_brief"), "WITH input", "    RETURNING"),
    ("maintenance", ("rescue_expired", "rescue_dead_workers"), "rescued AS (", None),
]


@pytest.mark.parametrize(("stem", "names", "start", "end"), SHARED)
def test_shared_text_stays_the_same_in_each_statement(
    stem: str, names: tuple[str, ...], start: str, end: str | None
) -> None:
    spans = []
    for name in names:
        statement = sql_files.query(stem, name)
        first = statement.index(start)
        spans.append(statement[first : statement.index(end, first) if end else None])
    assert all(span == spans[0] for span in spans), f"{stem}.sql: {names} differ from {start!r}"


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate SQL statement name 'a'"):
        sql_files.parse_named_statements("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_params_are_read_in_order_across_lines() -> None:
    statement = (
        "-- params: $1 queues, $2 batch_size,\n--         $3 worker_id\n"
        "-- $1 is not a params line: one space, so it is prose\nSELECT $1, $2, $3;"
    )
    assert sql_files.declared_parameters(statement) == ["queues", "batch_size", "worker_id"]
    assert sql_files.declared_parameters("-- Explains $1.\nSELECT $1;") == []


@pytest.mark.parametrize(
    "params", ["$2 queues", "$1 queues, $3 limit", "$1 two words", "$1 queues,", "$1"]
)
def test_a_malformed_params_line_fails_at_load(params: str) -> None:
    with pytest.raises(ValueError, match="should read"):
        sql_files.parse_named_statements(f"-- name: a\n-- params: {params}\nSELECT $1;\n")
