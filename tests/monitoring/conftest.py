"""Fixtures for the monitoring tests: a bus served in this process (so tests can read its
monitoring directly), node runners on it, and HTTP reads of its API.

Every test that takes ``db_url`` runs on SQLite, and also on PostgreSQL when
POWERBUS_TEST_PG_URL is set (each such test gets a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.server import BusServer
from powerbus.monitoring import MonitoringConfig
from powerbus.nodes.sdk import Node, NodeConfig, NodeRunner

PG_ENV = "POWERBUS_TEST_PG_URL"
LOOPBACK = HostPort("127.0.0.1", 0)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_kind" in metafunc.fixturenames:
        kinds = [pytest.param("sqlite", id="sqlite")]
        if os.environ.get(PG_ENV):
            kinds.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))
        metafunc.parametrize("db_kind", kinds)


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for the monitoring tables."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'bus.db'}"
        return
    admin = sa.create_engine(os.environ[PG_ENV], poolclass=sa.pool.NullPool)
    schema = f"monitoring_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}")
    url = sa.make_url(os.environ[PG_ENV]).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


BusFactory = Callable[..., Awaitable[BusServer]]
RunnerFactory = Callable[..., Awaitable[NodeRunner]]


@pytest.fixture
async def bus_server(tmp_path: Path) -> AsyncIterator[BusFactory]:
    """``await bus_server(monitoring=MonitoringConfig(...), lease_ttl=...)`` starts a bus in
    this process on free ports with its own SQLite file; all are stopped at the end."""
    async with AsyncExitStack() as stack:

        async def start(
            *, monitoring: MonitoringConfig | None = None, db: str = "", **options: Any
        ) -> BusServer:
            config = BusConfig(
                grpc=LOOPBACK,
                http=LOOPBACK,
                db=db or f"sqlite:///{tmp_path / 'bus.db'}",
                **options,
            )
            server = BusServer(config=config, monitoring=monitoring)
            return await stack.enter_async_context(server)

        yield start


@pytest.fixture
async def runners() -> AsyncIterator[RunnerFactory]:
    """``await runners(node, bus=server, node_id="x", priority=...)`` serves ``node`` on a
    free port, registered with ``bus``; stopped (deregistered) at the end."""
    async with AsyncExitStack() as stack:

        async def start(node: Node, *, bus: BusServer, node_id: str, **options: Any) -> NodeRunner:
            config = NodeConfig(id=node_id, bus=bus.grpc_address, **options)
            runner = await stack.enter_async_context(NodeRunner(node, config=config))
            await asyncio.wait_for(runner.wait_registered(), 10)
            return runner

        yield start
