"""One function builds a new job's row (jobqueue_new_job, migration 0016), and every enqueue
path inserts what it returns: each INSERT INTO jobs in worker/db/sql/*.sql and in the newest
definition of each SQL function lists the builder's columns and selects its row, so a rule
written out on one path alone fails here. tests/integration/test_new_job_row.py checks that
the paths give the same row, and that PostgreSQL inlines the builder."""

from __future__ import annotations

import re
from importlib import resources

import pytest

BUILDER = "jobqueue_new_job"
DB = resources.files("worker.db")
SQL_FILES = sorted(
    (p for p in DB.joinpath("sql").iterdir() if p.name.endswith(".sql")), key=lambda p: p.name
)
MIGRATIONS = sorted(
    (p for p in DB.joinpath("migrations").iterdir() if p.name.endswith(".sql")),
    key=lambda p: p.name,
)

_FUNCTION = re.compile(
    r"\b(?P<verb>CREATE(?:\s+OR\s+REPLACE)?|DROP)\s+FUNCTION\s+(?:IF\s+EXISTS\s+)?(?P<name>\w+)",
    re.IGNORECASE,
)
_BODY = re.compile(r"\bAS\s+(\$\w*\$)", re.IGNORECASE)
_INSERT = re.compile(r"\bINSERT\s+INTO\s+jobs\s*\((?P<columns>[^)]*)\)", re.IGNORECASE)
_ROW = re.compile(
    r"\s*(?:OVERRIDING\s+SYSTEM\s+VALUE\s+)?SELECT\s+(?:(?P<id>\w+)\.id\s*,\s*)?"
    r"(?P<alias>\w+)\.\*\s+FROM\b",
    re.IGNORECASE,
)


def _code(text: str) -> str:
    """The text without comments (none of ours has `--` inside a string)."""
    return re.sub(r"--[^\n]*", "", text)


def newest_functions() -> dict[str, tuple[str, str]]:
    """Each SQL function as the migrations leave it: name -> (migration, its definition)."""
    found: dict[str, tuple[str, str]] = {}
    for migration in MIGRATIONS:
        text = _code(migration.read_text())
        for match in _FUNCTION.finditer(text):
            name = match.group("name").lower()
            if match.group("verb").upper() == "DROP":
                found.pop(name, None)  # gone, unless a later CREATE makes it again
                continue
            body = _BODY.search(text, match.end())
            assert body is not None, f"{migration.name}: {name} has no dollar-quoted body"
            end = text.index(body.group(1), body.end()) + len(body.group(1))
            found[name] = (migration.name, text[match.start() : end])
    return found


def builder_columns() -> list[str]:
    functions = newest_functions()
    assert BUILDER in functions, f"no migration defines {BUILDER}"
    _, definition = functions[BUILDER]
    table = re.search(r"RETURNS\s+TABLE\s*\((.*?)\)\s*LANGUAGE", definition, re.S | re.I)
    assert table is not None, f"{BUILDER} must return TABLE (...): a set, so that it inlines"
    return [item.split()[0] for item in table.group(1).split(",")]


def _places() -> list[tuple[str, str]]:
    """Where an enqueue path can write a row: every statement file, and the newest definition
    of every SQL function (an older one is replaced, so it no longer runs)."""
    places = [(f"sql/{p.name}", _code(p.read_text())) for p in SQL_FILES]
    places += [
        (f"{migration} {name}()", text) for name, (migration, text) in newest_functions().items()
    ]
    return places


def _call_end(text: str, start: int) -> int:
    """The index just past the `)` that closes the call whose `(` is at `start`."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index + 1
    raise AssertionError("unbalanced parentheses")


def row_problem(statement_tail: str, columns: list[str], expected: list[str]) -> str | None:
    """Why an INSERT INTO jobs (columns) followed by `statement_tail` does not take its row
    from the builder, or None when it does."""
    with_id = columns[:1] == ["id"]
    if (columns[1:] if with_id else columns) != expected:
        return f"lists {columns}, not the builder's columns {expected} (with id first, or not)"
    row = _ROW.match(statement_tail)
    if row is None:
        return f"does not SELECT [x.id, ] n.* FROM ... {BUILDER}(...) AS n"
    if with_id != (row.group("id") is not None):
        return "selects an id for no id column, or none for the id column"
    call = re.search(rf"\b{BUILDER}\s*\(", statement_tail[row.end() :])
    if call is None:
        return f"takes its row from somewhere other than {BUILDER}"
    after = row.end() + _call_end(statement_tail[row.end() :], call.end() - 1)
    alias = re.match(r"\s+AS\s+(\w+)\b", statement_tail[after:], re.I)
    if alias is None or alias.group(1) != row.group("alias"):
        return f"selects {row.group('alias')}.*, which is not the {BUILDER}(...) call's alias"
    return None


def test_every_insert_into_jobs_takes_its_row_from_the_builder() -> None:
    expected = builder_columns()
    problems, inserts = [], 0
    for place, text in _places():
        for match in _INSERT.finditer(text):
            inserts += 1
            columns = [c.strip().lower() for c in match.group("columns").split(",")]
            problem = row_problem(text[match.end() :], columns, expected)
            if problem:
                problems.append(f"{place}: INSERT INTO jobs {problem}")
    assert not problems, "\n".join(problems)
    # insert_jobs, insert_jobs_brief, insert_planned_jobs, insert_unique_job, and
    # jobqueue_insert_job: a place that stops inserting should say so here
    assert inserts == 5


def test_the_builder_stays_inlinable() -> None:
    """PostgreSQL inlines only a LANGUAGE sql function that is not VOLATILE, not STRICT, not
    SECURITY DEFINER, with no SET, returning a set (as a call in FROM). A plpgsql builder
    would cost a call per row of a batch."""
    _, definition = newest_functions()[BUILDER]
    header = definition[: _BODY.search(definition).start()]  # type: ignore[union-attr]
    assert re.search(r"\bLANGUAGE\s+sql\b", header, re.I)
    assert re.search(r"\b(STABLE|IMMUTABLE)\b", header, re.I)
    for showstopper in ("STRICT", "RETURNS NULL ON NULL INPUT", "SECURITY DEFINER", " SET "):
        assert showstopper not in header.upper()


@pytest.mark.parametrize(
    ("tail", "columns", "problem"),
    [
        (" SELECT n.* FROM jobqueue_new_job($1) AS n;", ["a", "b"], None),
        (
            " OVERRIDING SYSTEM VALUE SELECT p.id, n.* FROM p, jobqueue_new_job(f(p.a)) AS n",
            ["id", "a", "b"],
            None,
        ),
        (" VALUES ($1, $2)", ["a", "b"], "does not SELECT"),
        (" SELECT n.* FROM other($1) AS n", ["a", "b"], "somewhere other"),
        (" SELECT m.* FROM jobqueue_new_job($1) AS n", ["a", "b"], "not the"),
        (" SELECT n.* FROM jobqueue_new_job($1) AS n", ["b", "a"], "not the builder's columns"),
        (" SELECT p.id, n.* FROM jobqueue_new_job($1) AS n", ["a", "b"], "no id column"),
    ],
)
def test_the_check_tells_a_built_row_from_one_written_out(
    tail: str, columns: list[str], problem: str | None
) -> None:
    found = row_problem(tail, columns, ["a", "b"])
    if problem is None:
        assert found is None
    else:
        assert problem in (found or "")
