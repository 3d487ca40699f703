"""The data layer's errors, and the one answer to "is this database error worth retrying?".

Every caller (the worker runtime, the REST API, the controller and the CLI) asks
`is_transient(exc)`: True means the server went away or is busy, and the same call may
succeed later; False means a bug, a refused value, or a configuration that no retry fixes
(a wrong password, a database that does not exist).
"""

from __future__ import annotations

import asyncio

import asyncpg


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobStateConflict(RuntimeError):
    """The job exists but its status does not allow the action."""

    def __init__(self, job_id: int, status: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id}: it is {status}")
        self.job_id = job_id
        self.status = status
        self.action = action


# jobqueue_liveness_gate's refusal (migration 0014): a claim while the worker's liveness lock
# is not held.
LIVENESS_SQLSTATE = "JQ001"


class LivenessLost(RuntimeError):
    """The claim was refused: this worker's liveness lock is not held (its LISTEN connection
    is gone, whatever the client believes, or a rescuer is taking its jobs). Not an outage:
    the worker reconnects that connection and claims again once it holds the lock."""


# jobqueue_layout_gate's refusal (migration 0015): the claim was written for another storage
# layout than the database's.
LAYOUT_SQLSTATE = "JQ002"


class LayoutMismatch(RuntimeError):
    """The claim was refused: the database's storage layout is not the one this release's
    statements were written for (a newer release migrated it, or this one's migration has not
    run). No retry helps, so the worker stops claiming; the message names both layouts."""


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL could not be reached; the message names host, port and what to check."""


class DatabaseRefused(DatabaseUnavailable):
    """PostgreSQL answered but will not let us in: wrong user or password, no such database,
    no CONNECT privilege. Permanent: a process exits with this message instead of retrying.
    (A subclass, so that every place that reports an unreachable database reports it too.)"""


# The server refused this login for good; SQLSTATE classes 28 and 3D, and 42501.
REFUSED_LOGIN: tuple[type[Exception], ...] = (
    asyncpg.InvalidAuthorizationSpecificationError,  # 28000, 28P01 wrong password
    asyncpg.InvalidCatalogNameError,  # 3D000 database does not exist
    asyncpg.InsufficientPrivilegeError,  # 42501 no CONNECT on the database
    asyncpg.ClientConfigurationError,  # a DSN asyncpg cannot use
)

_TRANSIENT: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    OSError,  # refused, reset, unreachable, DNS not (yet) resolvable
    asyncio.TimeoutError,  # connect timeout, or a pool with no free connection in time
    asyncpg.PostgresConnectionError,  # class 08, includes ConnectionDoesNotExistError
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, out of memory
    asyncpg.OperatorInterventionError,  # class 57: admin shutdown, starting up
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseRefused):
        return False
    if isinstance(exc, _TRANSIENT):
        return True
    # asyncpg reports use of a connection the server closed as a plain InterfaceError;
    # other InterfaceErrors (e.g. "another operation is in progress") are bugs, not outages.
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def is_refusal(exc: BaseException) -> bool:
    """The server looked at the statement and said no (bad data, a constraint): the same
    write will never succeed. Anything else that is not transient (an InterfaceError from a
    connection the server is tearing down, say) is no verdict on the data."""
    return isinstance(exc, asyncpg.PostgresError) and not is_transient(exc)
