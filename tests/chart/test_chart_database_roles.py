"""The bundled PostgreSQL's roles, from what the chart renders, on a real server: the init
script the postgres image runs at first start makes three roles, none a superuser; the
migration Job's command, with the env the chart gives it, grants them; and the workloads then
work as those roles (docs/security.md)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from tests.chart.chart_support import FULLNAME, Helm, env_of, main_container, one
from tests.conftest import PrivateServer
from tests.fixtures.tools import REPO_ROOT
from tests.integration.queue_support import fetchval

DATABASE = "jobqueue"


def init_script(objects: list[dict[str, Any]]) -> str:
    config_map = one(objects, "ConfigMap", f"{FULLNAME}-postgresql-init")
    return str(config_map["data"]["10-jobqueue-roles.sh"])


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    return {name: e["value"] for name, e in env_of(container).items() if "value" in e}


async def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, args, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


async def test_the_chart_makes_three_roles_and_no_workload_is_a_superuser(
    helm: Helm, private_pg_server: PrivateServer
) -> None:
    objects = helm.template()
    server = private_pg_server
    await server.create_database(DATABASE, migrated=False)
    postgres = plain_env(main_container(one(objects, "StatefulSet", f"{FULLNAME}-postgresql")))
    assert postgres["POSTGRES_USER"] == "postgres"
    roles = {kind: postgres[f"JOBQUEUE_{kind}"] for kind in ("OWNER", "RUNTIME", "READONLY")}
    # what the postgres image does at first start: run the script with its env
    env = {
        "PATH": f"{server.bin_dir}:/usr/bin:/bin",
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": DATABASE,
        **{f"JOBQUEUE_{kind}": name for kind, name in roles.items()},
        **{f"JOBQUEUE_{kind}_PASSWORD": secrets.token_urlsafe(16) for kind in roles},
    }
    done = await run(["sh", "-c", init_script(objects)], env)
    assert done.returncode == 0, done.stderr
    admin = server.dsn(DATABASE)
    for name in roles.values():
        row = await fetchval(admin, f"SELECT rolsuper OR rolcreaterole OR rolcreatedb "
                                    f"FROM pg_roles WHERE rolname = '{name}'")  # fmt: skip
        assert row is False, name
    assert await fetchval(admin, "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                 f"WHERE datname = '{DATABASE}'") == roles["OWNER"]  # fmt: skip
    assert await fetchval(
        admin, f"SELECT pg_has_role('{roles['READONLY']}', 'pg_read_all_stats', 'member')"
    )

    # the migration Job, as the chart runs it: the owner migrates and grants
    migrate = main_container(one(objects, "Job", f"{FULLNAME}-migrate"))
    owner_dsn = admin.replace("://postgres@", f"://{roles['OWNER']}@", 1)
    grants = {k: v for k, v in plain_env(migrate).items() if k.startswith("JOBQUEUE_DB_")}
    done = await run(
        [sys.executable, "-m", "worker", "migrate"], {**os.environ, "DB_URL": owner_dsn, **grants}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"granted rights to: {roles['RUNTIME']}, {roles['READONLY']}" in done.stdout

    runtime = admin.replace("://postgres@", f"://{roles['RUNTIME']}@", 1)
    readonly = admin.replace("://postgres@", f"://{roles['READONLY']}@", 1)
    await fetchval(runtime, "INSERT INTO jobs (job_type, payload) VALUES ('noop', '{}')")
    assert await fetchval(readonly, "SELECT count(*) FROM jobs") == 1
    for dsn in (owner_dsn, runtime, readonly):
        conn = await asyncpg.connect(dsn)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")
        finally:
            await conn.close()
    # the controller's database-pressure check reads other roles' sessions: their transactions
    holder = await asyncpg.connect(admin)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1")
            seen = await fetchval(
                readonly,
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE usename = 'postgres' AND xact_start IS NOT NULL",
            )
    finally:
        await holder.close()
    assert seen >= 1
