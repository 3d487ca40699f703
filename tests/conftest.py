"""Session fixtures: a throwaway PostgreSQL, and a real Kubernetes control plane."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.fixtures import postgres as pg
from tests.fixtures.kube import ControlPlane
from tests.fixtures.report import SUMMARY_LINES
from tests.fixtures.tools import require_binaries
from worker.db.connection import connect

TEMPLATE_DB = "jobqueue_template"


# ---------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def pg_golden_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """An initdb'd data directory that private servers copy instead of running initdb again."""
    server = pg.PostgresServer()
    try:
        server.init()
        yield server.data
    finally:
        server.destroy()


@pytest.fixture(scope="session")
async def pg_server() -> AsyncIterator[pg.PostgresServer | pg.ExternalServer]:
    external = os.environ.get("JOBQUEUE_TEST_DSN")
    server: pg.PostgresServer | pg.ExternalServer
    if external:
        server = pg.ExternalServer(external)
    else:
        server = pg.PostgresServer()
        server.init()
        server.start()
    template = f"{TEMPLATE_DB}_{uuid.uuid4().hex[:8]}"
    try:
        await pg.create_migrated_database(server, template)
        server.template = template  # type: ignore[union-attr]
        yield server
    finally:
        if external:
            await pg.drop_database(server.dsn(), template)
        server.destroy()


@pytest.fixture
async def pg_dsn(pg_server: pg.PostgresServer | pg.ExternalServer) -> AsyncIterator[str]:
    """A fresh database of this test's own, already migrated (cloned from a template)."""
    name = pg.unique_db_name()
    await pg.create_database(pg_server.dsn(), name, template=pg_server.template)  # type: ignore[union-attr]
    try:
        yield pg_server.dsn(name)
    finally:
        await pg.drop_database(pg_server.dsn(), name)


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection to this test's own migrated database."""
    connection = await connect(pg_dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def pg_dsn_empty(pg_server: pg.PostgresServer | pg.ExternalServer) -> AsyncIterator[str]:
    """A fresh database with no schema."""
    name = pg.unique_db_name("e")
    await pg.create_database(pg_server.dsn(), name)
    try:
        yield pg_server.dsn(name)
    finally:
        await pg.drop_database(pg_server.dsn(), name)


class PrivateServer(pg.PostgresServer):
    async def create_database(self, name: str = "jobqueue", migrated: bool = True) -> str:
        if migrated:
            return await pg.create_migrated_database(self, name)
        await pg.create_database(self.dsn(), name)
        return self.dsn(name)


@pytest.fixture
def private_pg_server(pg_golden_data: Path) -> Iterator[PrivateServer]:
    """A server of this test's own, which it may stop, start and restart (same port)."""
    server = PrivateServer()
    server.init(golden=pg_golden_data)
    server.start()
    try:
        yield server
    finally:
        server.destroy()


# ---------------------------------------------------------------- Kubernetes
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kubectl")
WORKLOAD_BINARIES = ("kube-controller-manager", "kube-scheduler", "kwok")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    binaries = require_binaries(*CONTROL_PLANE_BINARIES)
    plane = ControlPlane(binaries)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kwok_cluster(control_plane: ControlPlane) -> ControlPlane:
    control_plane.bin.update(require_binaries(*WORKLOAD_BINARIES))
    control_plane.start_workloads()
    return control_plane


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    control_plane.create_namespace(name)
    try:
        yield name
    finally:
        control_plane.delete_namespace(name)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return require_binaries("helm")["helm"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY_LINES:
        terminalreporter.section("job-queue measurements (printed, never asserted)")
        for line in SUMMARY_LINES:
            terminalreporter.write_line(line)
