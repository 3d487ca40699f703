"""Loads the named SQL statements kept in worker/db/sql/*.sql.

Each file holds one or more statements, each introduced by a line `-- name: some_name`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from importlib import resources

from worker.db import NEW_JOB_CHANNEL

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_named_statements(text: str) -> dict[str, str]:
    statements: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        if match.group(1) in statements:
            raise ValueError(f"duplicate SQL statement name {match.group(1)!r}")
        statements[match.group(1)] = body
    return statements


# Constants the SQL writes as :NAME (not valid PostgreSQL, so a missed one fails loudly); the
# loader fills in their one home, so the channel's name is written once.
PLACEHOLDERS = {":NEW_JOB_CHANNEL": "'" + NEW_JOB_CHANNEL + "'"}


def fill_placeholders(text: str) -> str:
    for placeholder, literal in PLACEHOLDERS.items():
        text = text.replace(placeholder, literal)
    return text


@cache
def load(file_stem: str) -> dict[str, str]:
    """All named statements of worker/db/sql/<file_stem>.sql."""
    text = resources.files("worker.db").joinpath("sql", f"{file_stem}.sql").read_text()
    return parse_named_statements(fill_placeholders(text))


def query(file_stem: str, name: str) -> str:
    return load(file_stem)[name]


def statements(file_stem: str) -> Callable[[str], str]:
    """A lookup of one file's statements by name, for a module's `_sql`; the file is read on
    the first call, not at import."""
    return partial(query, file_stem)
