"""``powerbus node echo`` as a real process on the real registry: drains on
SIGTERM, re-registers after a lease lapsed while it hung, fails visibly when it cannot start."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import ProcessError, eventually
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

UP, DOWN = registry_pb2.NODE_HEALTH_UP, registry_pb2.NODE_HEALTH_DOWN


@pytest.fixture
async def registry_stub(registry) -> AsyncIterator[registry_pb2_grpc.RegistryStub]:
    async with grpc.aio.insecure_channel(str(registry.address)) as channel:
        yield registry_pb2_grpc.RegistryStub(channel)


async def listed(stub, node_id: str, *, health=None):
    reply = await stub.ListNodes(registry_pb2.ListNodesRequest(include_down=True), timeout=5)
    node = next((n for n in reply.nodes if n.node_id == node_id), None)
    return node if node is not None and health in (None, node.health) else None


def seconds(value: float) -> Duration:
    duration = Duration()
    duration.FromTimedelta(timedelta(seconds=value))
    return duration


async def test_sigterm_deregisters_then_lets_the_call_in_flight_finish(
    registry, registry_stub, node_factory
):
    node = node_factory("echo", bus=registry.address, node_id="echo-drain")
    assert await listed(registry_stub, "echo-drain", health=UP)
    async with grpc.aio.insecure_channel(node.address) as channel:
        echo = echo_pb2_grpc.EchoStub(channel)
        slow = asyncio.ensure_future(
            echo.Echo(echo_pb2.EchoRequest(message="slow", delay=seconds(1.5)), timeout=10)
        )

        async def in_flight():
            found = await listed(registry_stub, "echo-drain")
            return found is not None and found.load.in_flight == 1

        await eventually(in_flight, timeout=10, what="the slow call reported in flight")
        stopping = asyncio.ensure_future(asyncio.to_thread(node.stop, signal.SIGTERM))
        await eventually(
            lambda: listed(registry_stub, "echo-drain", health=DOWN),
            timeout=5,
            what="deregistered",
        )
        assert not slow.done(), "deregistration must come before the drain ends"
        reply = await slow
        exit_status = await stopping
    assert (reply.message, reply.node_id) == ("slow", "echo-drain")
    assert exit_status == 0


async def test_sigint_stops_cleanly_too(registry, registry_stub, node_factory):
    node = node_factory("echo", bus=registry.address, node_id="echo-int")
    assert await asyncio.to_thread(node.stop, signal.SIGINT) == 0
    assert await listed(registry_stub, "echo-int", health=DOWN)


async def test_a_node_that_hung_past_its_lease_registers_again(
    registry, registry_stub, node_factory
):
    node = node_factory("echo", bus=registry.address, node_id="echo-hang")
    first = await listed(registry_stub, "echo-hang", health=UP)
    node.pause()  # no heartbeats: the 1 s lease lapses
    try:
        await eventually(
            lambda: listed(registry_stub, "echo-hang", health=DOWN), timeout=10, what="lapsed"
        )
    finally:
        node.resume()
    again = await eventually(
        lambda: listed(registry_stub, "echo-hang", health=UP), timeout=10, what="re-registered"
    )
    # A new registration (lease ids are shown to nobody but their holder).
    assert again.registered_at.ToDatetime() > first.registered_at.ToDatetime()
    assert again.address == first.address == node.address


def test_an_unknown_kind_fails_with_the_process_output(registry, node_factory):
    with pytest.raises(ProcessError, match=r"exited with status 2") as caught:
        node_factory("no-such-kind", bus=registry.address)
    assert "unknown node kind 'no-such-kind'; supported: " in str(caught.value)


def test_a_node_that_cannot_register_writes_no_state_file(dead_address, node_factory):
    # Long enough for a loaded machine to start Python and log the first failed attempt.
    with pytest.raises(ProcessError, match=r"wrote no echo-nobus\.json within 6s") as caught:
        node_factory("echo", bus=dead_address, node_id="echo-nobus", ready_timeout=6)
    assert "register attempt" in str(caught.value)


def test_a_node_the_bus_refuses_exits_1_with_the_reason(registry, node_factory):
    with pytest.raises(ProcessError, match=r"exited with status 1") as caught:
        node_factory("echo", bus=registry.address, node_id="bad id")
    assert "error: bad id: node_id: 'bad id' is not an id" in str(caught.value)
