"""Fixtures for the node SDK tests: an echo node served in-process, a port nobody listens
on (a bus that is not there), and the real registry served in a thread of its own."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.registry import Registry
from powerbus.echo.v1 import echo_pb2_grpc
from powerbus.nodes.echo import EchoNode
from powerbus.nodes.sdk import BusChannel, NodeConfig, NodeRunner
from powerbus.registry.v1 import registry_pb2_grpc


@pytest.fixture
def dead_address() -> Iterator[HostPort]:
    """A loopback port that is bound but not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield HostPort("127.0.0.1", sock.getsockname()[1])


@pytest.fixture
async def echo_runner() -> AsyncIterator[NodeRunner]:
    """An echo node serving standalone (no bus) on a free port."""
    async with NodeRunner(EchoNode(), config=NodeConfig(id="echo-1")) as runner:
        yield runner


@pytest.fixture
async def caller(echo_runner: NodeRunner) -> AsyncIterator[BusChannel]:
    """A channel straight to the echo node, calling as node "tester"."""
    async with BusChannel(target=echo_runner.address, caller="tester", default_timeout=5) as ch:
        yield ch


@pytest.fixture
def echo(caller: BusChannel) -> echo_pb2_grpc.EchoStub:
    return caller.stub(echo_pb2_grpc.EchoStub)


class RegistryThread:
    """The real registry servicer on a grpc.aio server, in a thread with its own event loop,
    so tests may block (waiting on a node process) without starving it. Until the bus
    process exists this stands in for it; ``clock_offset`` moves the registry's clock to
    make leases lapse on demand."""

    def __init__(self, *, db_url: str, port: int = 0, lease_ttl: timedelta) -> None:
        self.db_url = db_url
        self.lease_ttl = lease_ttl
        self.clock_offset = timedelta(0)
        self._port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-registry")
        self.address = HostPort("127.0.0.1", port)

    def start(self) -> RegistryThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("registry did not start within 30s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "registry thread did not stop within 30s"

    def _clock(self) -> datetime:
        return datetime.now(timezone.utc) + self.clock_offset

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        registry = Registry(
            db_url=self.db_url,
            lease_ttl=self.lease_ttl,
            sweep_interval=timedelta(milliseconds=100),
            clock=self._clock,
        )
        async with registry:
            server = grpc.aio.server()
            registry_pb2_grpc.add_RegistryServicer_to_server(registry.servicer, server)
            port = server.add_insecure_port(f"127.0.0.1:{self._port}")
            self.address = HostPort("127.0.0.1", port)
            await server.start()
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await server.stop(0)


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., RegistryThread]]:
    """``registry_factory(port=0, lease_ttl=timedelta(seconds=1))``: a started registry on
    one SQLite database per test (so a restarted registry remembers its nodes)."""
    started: list[RegistryThread] = []

    def start(*, port: int = 0, lease_ttl: timedelta = timedelta(seconds=1)) -> RegistryThread:
        thread = RegistryThread(
            db_url=f"sqlite:///{tmp_path / 'registry.db'}", port=port, lease_ttl=lease_ttl
        )
        started.append(thread)
        return thread.start()

    yield start
    for thread in reversed(started):
        thread.stop()


@pytest.fixture
def registry(registry_factory: Callable[..., RegistryThread]) -> RegistryThread:
    return registry_factory()


@pytest.fixture
async def registry_stub(registry: RegistryThread) -> AsyncIterator[registry_pb2_grpc.RegistryStub]:
    async with grpc.aio.insecure_channel(str(registry.address)) as channel:
        yield registry_pb2_grpc.RegistryStub(channel)
