"""Fixtures for the monitoring tests: a bus served in this process (so tests can read its
monitoring directly), node runners on it, and HTTP reads of its API.

Tests that take ``db_url`` (the plugin's) run on SQLite, and on PostgreSQL when
POWERBUS_TEST_PG_URL is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.server import BusServer
from powerbus.monitoring import MonitoringConfig
from powerbus.nodes.sdk import Node, NodeConfig, NodeRunner

LOOPBACK = HostPort("127.0.0.1", 0)


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
