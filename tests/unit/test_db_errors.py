"""The error taxonomy's two questions, on asyncpg's own exception classes: is it worth
retrying (is_transient), and did the server refuse the statement for good (is_refusal)? Only a
refusal may fail a job whose acknowledgement could not be written."""

from __future__ import annotations

import asyncpg
import pytest

from worker.db.errors import DatabaseRefused, DatabaseUnavailable, is_refusal, is_transient

TORN_DOWN = "cannot switch to state 12; another operation (2) is in progress"


@pytest.mark.parametrize(
    ("exc", "transient", "refusal"),
    [
        (asyncpg.ConnectionDoesNotExistError("closed in the middle"), True, False),
        (asyncpg.AdminShutdownError("terminating connection"), True, False),
        (asyncpg.TooManyConnectionsError("too many"), True, False),
        (DatabaseUnavailable("cannot reach"), True, False),
        (OSError("connection refused"), True, False),
        (asyncpg.InterfaceError("connection is closed"), True, False),
        # a pooled connection the server is tearing down: neither retried as such, nor a verdict
        (asyncpg.InterfaceError(TORN_DOWN), False, False),
        (asyncpg.UntranslatableCharacterError("unsupported Unicode escape"), False, True),
        (asyncpg.CheckViolationError("violates check constraint"), False, True),
        (asyncpg.InvalidTextRepresentationError("invalid input syntax"), False, True),
        (DatabaseRefused("wrong password"), False, False),
        (RuntimeError("a bug of ours"), False, False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_transient_and_refusal(exc: BaseException, transient: bool, refusal: bool) -> None:
    assert (is_transient(exc), is_refusal(exc)) == (transient, refusal)
