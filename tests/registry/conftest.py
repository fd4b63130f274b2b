"""Fixtures for the registry tests: registries on the plugin's ``db_url`` (SQLite, and
PostgreSQL when POWERBUS_TEST_PG_URL is set), served stubs.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FileDescriptor

from powerbus.bus.kernel.descriptors import descriptor_set_for
from powerbus.bus.registry import Registry
from powerbus.echo.v1 import echo_pb2
from powerbus.nodes.testing import eventually as wait_until
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

ECHO = "powerbus.echo.v1.Echo"
REGISTRY = "powerbus.registry.v1.Registry"
DEADLINE = 5.0

RegistryFactory = Callable[..., Awaitable[Registry]]
Serve = Callable[[Registry], Awaitable[registry_pb2_grpc.RegistryStub]]


@pytest.fixture
async def registry_factory(db_url: str) -> AsyncIterator[RegistryFactory]:
    """Starts registries on this test's database (10 s leases, 50 ms sweeps by default)."""
    started: list[Registry] = []

    async def make(**options: Any) -> Registry:
        settings: dict[str, Any] = {
            "db_url": db_url,
            "lease_ttl": timedelta(seconds=10),
            "sweep_interval": timedelta(milliseconds=50),
            **options,
        }
        registry = Registry(**settings)
        await registry.start()
        started.append(registry)
        return registry

    yield make
    for registry in reversed(started):
        await registry.stop()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serves a registry on 127.0.0.1:0 and returns a stub for it."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def start(registry: Registry) -> registry_pb2_grpc.RegistryStub:
        server = grpc.aio.server()
        registry_pb2_grpc.add_RegistryServicer_to_server(registry.servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return registry_pb2_grpc.RegistryStub(channel)

    yield start
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


@pytest.fixture
async def registry(registry_factory: RegistryFactory) -> Registry:
    return await registry_factory()


@pytest.fixture
async def stub(registry: Registry, serve: Serve) -> registry_pb2_grpc.RegistryStub:
    return await serve(registry)


def descriptor_set(*files: FileDescriptor) -> bytes:
    """A serialized FileDescriptorSet of ``files`` and everything they import."""
    return descriptor_set_for(*files).SerializeToString()


@pytest.fixture
def request_for() -> Callable[..., registry_pb2.RegisterRequest]:
    """A valid RegisterRequest for an echo node (and the registry service); override fields."""
    files = descriptor_set(echo_pb2.DESCRIPTOR, registry_pb2.DESCRIPTOR)

    def make(
        node_id: str = "echo-1", address: str = "127.0.0.1:7001", **fields: Any
    ) -> registry_pb2.RegisterRequest:
        values: dict[str, Any] = {
            "kind": "echo",
            "services": [ECHO],
            "file_descriptor_set": files,
            **fields,
        }
        return registry_pb2.RegisterRequest(node_id=node_id, address=address, **values)

    return make


Eventually = Callable[..., Awaitable[None]]


@pytest.fixture
def eventually() -> Eventually:
    """``await eventually(condition, what=...)``: poll for at most DEADLINE seconds."""
    return functools.partial(wait_until, timeout=DEADLINE)


@pytest.fixture
def files_of() -> Callable[..., bytes]:
    """``files_of(echo_pb2.DESCRIPTOR, ...)``: a serialized set with every import."""
    return descriptor_set
