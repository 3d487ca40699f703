"""Loads the named SQL statements kept in worker/db/sql/*.sql.

Each file holds one or more statements, each introduced by a line `-- name: some_name`, and is
run exactly as written: every statement is valid PostgreSQL on its own (nothing is pasted in),
so it can be copied into psql, and tests/integration/test_sql_prepare.py prepares each one. A
statement that takes parameters names them on the line under its name, in order:
`-- params: $1 ids, $2 worker_id` (asyncpg takes only $n; the names are for the reader, and the
test checks that PostgreSQL finds as many).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
# The params line, and comment lines right under it that go on with `$n name` items.
_PARAMS = re.compile(r"\A--\s*params:(.*(?:\n--\s{2,}\$\d.*)*)")
_PARAM = re.compile(r"\$(\d+)\s+([a-z_][a-z0-9_]*)")


def parse_named_statements(text: str) -> dict[str, str]:
    statements: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name, body = match.group(1), text[match.end() : end].strip()
        if name in statements:
            raise ValueError(f"duplicate SQL statement name {name!r}")
        declared_parameters(body)  # a malformed params line fails at load, not in review
        statements[name] = body
    return statements


def declared_parameters(statement: str) -> list[str]:
    """The names of a statement's $1, $2, ... in order, from its `-- params:` line (which may go
    on over the comment lines under it); [] when it has none."""
    found = _PARAMS.match(statement)
    if found is None:
        return []
    items = [i.strip() for i in found.group(1).replace("\n", " ").replace("--", " ").split(",")]
    names = []
    for number, item in enumerate(items, start=1):
        param = _PARAM.fullmatch(item)
        if param is None or int(param.group(1)) != number:
            raise ValueError(f"-- params: {item!r} should read `${number} name`")
        names.append(param.group(2))
    return names


@cache
def load(file_stem: str) -> dict[str, str]:
    """All named statements of worker/db/sql/<file_stem>.sql."""
    text = resources.files("worker.db").joinpath("sql", f"{file_stem}.sql").read_text()
    return parse_named_statements(text)


def query(file_stem: str, name: str) -> str:
    return load(file_stem)[name]


def statements(file_stem: str) -> Callable[[str], str]:
    """A lookup of one file's statements by name, for a module's `_sql`; the file is read on
    the first call, not at import."""
    return partial(query, file_stem)
