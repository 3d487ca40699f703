"""The statements' loader: named statements, and constants filled in from their one home."""

from __future__ import annotations

from importlib import resources

import pytest

from worker.db import NEW_JOB_CHANNEL, sql_files

SQL_DIR = resources.files("worker.db").joinpath("sql")
STEMS = sorted(p.name.removesuffix(".sql") for p in SQL_DIR.iterdir() if p.name.endswith(".sql"))


@pytest.mark.parametrize("stem", STEMS)
def test_no_placeholder_is_left_and_the_channel_is_not_written_literally(stem: str) -> None:
    raw = SQL_DIR.joinpath(f"{stem}.sql").read_text()
    assert NEW_JOB_CHANNEL not in raw, f"{stem}.sql: write :NEW_JOB_CHANNEL, not the name"
    for name, statement in sql_files.load(stem).items():
        assert ":NEW_JOB_CHANNEL" not in statement, f"{stem}.sql {name}"


def test_the_channel_is_filled_in_where_jobs_become_ready() -> None:
    notifying = [
        name
        for stem in STEMS
        for name, statement in sql_files.load(stem).items()
        if f"pg_notify('{NEW_JOB_CHANNEL}'," in statement
    ]
    assert {"release_jobs", "release_unknown_jobs", "retry_job", "rescue_expired"} <= set(notifying)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate SQL statement name 'a'"):
        sql_files.parse_named_statements("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_a_part_is_filled_in_where_later_statements_write_it() -> None:
    text = (
        "-- name: PICKED\n-- the part's own comment\nSELECT id\nFROM jobs\n\n"
        "-- name: a\nWITH p AS (\n    :PICKED\n)\nSELECT id::TEXT FROM p;\n"
    )
    statements = sql_files.parse_named_statements(text)
    assert statements == {
        "a": "WITH p AS (\n    SELECT id\n    FROM jobs\n)\nSELECT id::TEXT FROM p;"
    }


def test_a_part_named_in_a_comment_stays_prose() -> None:
    text = (
        "-- name: PICKED\nSELECT id\nFROM jobs\n\n"
        "-- name: a\n-- reads :PICKED's rows\nWITH p AS (\n    :PICKED\n)\nSELECT 1;\n"
    )
    assert sql_files.parse_named_statements(text)["a"] == (
        "-- reads :PICKED's rows\nWITH p AS (\n    SELECT id\n    FROM jobs\n)\nSELECT 1;"
    )
