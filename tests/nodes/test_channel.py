"""Calls through a BusChannel carry ``x-powerbus-caller`` and a deadline; proven by a real
echo node that echoes back the metadata and deadline it received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from powerbus.bus.kernel.errors import Unimplemented
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk import CALLER_KEY, BusChannel, BusClient, Node, NodeConfig, NodeRunner


async def two() -> AsyncIterator[echo_pb2.EchoRequest]:
    yield echo_pb2.EchoRequest(message="a")
    yield echo_pb2.EchoRequest(message="b")


async def test_every_call_shape_is_stamped_with_the_caller_and_a_deadline(echo):
    unary = await echo.Echo(echo_pb2.EchoRequest(message="m"))
    server_stream = [r async for r in echo.Expand(echo_pb2.ExpandRequest(message="m", count=1))]
    client_stream = await echo.Collect(two())
    bidi = [r async for r in echo.Chat(two())]
    for reply in (unary, server_stream[0], client_stream, bidi[0]):
        assert reply.metadata[CALLER_KEY] == "tester"
        assert 0 < reply.deadline_remaining.ToTimedelta().total_seconds() <= 5.1


async def test_a_deadline_the_caller_set_is_kept(echo):
    reply = await echo.Echo(echo_pb2.EchoRequest(message="m"), timeout=30)
    assert reply.deadline_remaining.ToTimedelta().total_seconds() > 20


async def test_a_caller_the_call_set_is_kept_and_other_metadata_passes(echo):
    metadata = ((CALLER_KEY, "forwarded-for"), ("x-powerbus-key", "acct-1"))
    reply = await echo.Echo(echo_pb2.EchoRequest(message="m"), metadata=metadata)
    assert reply.metadata[CALLER_KEY] == "forwarded-for"
    assert reply.metadata["x-powerbus-key"] == "acct-1"


class Relay(Node, echo_pb2_grpc.EchoServicer):
    """Answers Echo by calling Echo through its bus."""

    kind = "relay"
    upstream = BusClient(echo_pb2_grpc.EchoStub)

    async def Echo(self, request, context):  # type: ignore[no-untyped-def]
        reply = await self.upstream.Echo(request)
        return echo_pb2.EchoReply(
            message=f"{self.node_id} via {reply.node_id}", metadata=reply.metadata
        )


async def test_a_bus_client_attribute_calls_as_the_node(echo_runner):
    # The relay's "bus" is the echo node itself: what the echo node receives is what the
    # router would receive from the relay.
    config = NodeConfig(id="relay-1", bus=echo_runner.address)
    async with NodeRunner(Relay(), config=config) as relay:
        # An echo node is no registry: the bus refusing the node is final, not retried.
        with pytest.raises(Unimplemented):
            await asyncio.wait_for(relay.wait_registered(), timeout=10)
        async with BusChannel(target=relay.address, caller="client-1") as channel:
            reply = await channel.stub(echo_pb2_grpc.EchoStub).Echo(
                echo_pb2.EchoRequest(message="m")
            )
    assert reply.message == "relay-1 via echo-1"
    assert reply.metadata[CALLER_KEY] == "relay-1"
