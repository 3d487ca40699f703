"""A login PostgreSQL refuses (wrong password, no such database) is permanent: `jobqueue
worker` and `jobqueue api` print one clear line and exit non-zero instead of retrying."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest

from tests.conftest import PrivateServer
from worker.db.errors import DatabaseRefused, DatabaseUnavailable, is_transient

ROLE = "jq_password_user"


@pytest.fixture
async def password_server(private_pg_server: PrivateServer) -> PrivateServer:
    """The private server, with one role that must log in with a password over TCP."""
    conn = await asyncpg.connect(private_pg_server.dsn())
    try:
        await conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD 'right-password'")
        hba = private_pg_server.data / "pg_hba.conf"
        rule = f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # first matching line wins
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    return private_pg_server


def _dsn(server: PrivateServer, password: str, dbname: str) -> str:
    return f"postgresql://{ROLE}:{password}@127.0.0.1:{server.port}/{dbname}"


def _run(command: str, dsn: str, port_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DB_URL": dsn, "DEBUG": "false", **port_env}
    return subprocess.run(
        [sys.executable, "-m", "worker", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a retry loop would hang here: the test then fails on the timeout
        check=False,
    )


@pytest.fixture
def ports() -> Iterator[dict[str, str]]:
    from tests.fixtures.processes import free_port

    yield {
        "JOBQUEUE_API_HOST": "127.0.0.1",
        "JOBQUEUE_API_PORT": str(free_port()),
        "JOBQUEUE_WORKER_PORT": str(free_port()),
    }


@pytest.mark.parametrize("command", ["worker", "api"])
@pytest.mark.parametrize(
    ("password", "dbname", "said"),
    [
        ("wrong-password", "postgres", "password authentication failed"),
        ("right-password", "no_such_database", 'database "no_such_database" does not exist'),
    ],
    ids=["wrong-password", "missing-database"],
)
def test_refused_login_exits_with_one_clear_line(
    password_server: PrivateServer,
    ports: dict[str, str],
    command: str,
    password: str,
    dbname: str,
    said: str,
) -> None:
    done = _run(command, _dsn(password_server, password, dbname), ports)
    assert done.returncode != 0, done.stderr
    output = done.stdout + done.stderr
    assert "refused the login" in output, output
    assert said in output, output
    assert "DB_URL" in output, output
    assert "Traceback" not in output, output


async def test_is_transient_tells_refused_from_unreachable(
    password_server: PrivateServer,
) -> None:
    from worker.db.connection import connect

    with pytest.raises(DatabaseRefused) as refused:
        await connect(_dsn(password_server, "wrong-password", "postgres"))
    assert not is_transient(refused.value)
    ok = await connect(_dsn(password_server, "right-password", "postgres"))
    await ok.close()
    password_server.stop()
    with pytest.raises(DatabaseUnavailable) as down:
        await connect(_dsn(password_server, "right-password", "postgres"), timeout=5)
    assert is_transient(down.value)
    assert not isinstance(down.value, DatabaseRefused)
