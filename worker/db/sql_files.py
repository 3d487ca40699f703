"""Loads the named SQL statements kept in worker/db/sql/*.sql.

Each file holds one or more statements, each introduced by a line `-- name: some_name`. A name
in capitals (`-- name: PICKED`) is a part, not a statement: the text that two statements share,
written once and filled in where the file's later statements write `:PICKED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from importlib import resources

from worker.db import NEW_JOB_CHANNEL

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_PART = re.compile(r"[A-Z][A-Z0-9_]*")


def _fill_parts(body: str, parts: dict[str, str]) -> str:
    """Each `:PART` replaced by its text, every line of it indented as the placeholder's line.
    A `:PART` in a comment (after `--` on its line) is prose, and stays as written."""
    if not parts:
        return body
    written = re.compile(r"(?<!:):(" + "|".join(parts) + r")\b")  # not a ::TYPE cast

    def fill(match: re.Match[str]) -> str:
        line = body[body.rfind("\n", 0, match.start()) + 1 : match.start()]
        if "--" in line:
            return match.group(0)
        indent = line[: len(line) - len(line.lstrip())]
        return parts[match.group(1)].replace("\n", "\n" + indent)

    return written.sub(fill, body)


def parse_named_statements(text: str) -> dict[str, str]:
    statements: dict[str, str] = {}
    parts: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name, body = match.group(1), text[match.end() : end].strip()
        if name in statements or name in parts:
            raise ValueError(f"duplicate SQL statement name {name!r}")
        body = _fill_parts(body, parts)
        if _PART.fullmatch(name):  # its own comments stay here, not in every statement
            parts[name] = re.sub(r"\A(--[^\n]*\n\s*)+", "", body)
        else:
            statements[name] = body
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
