"""The node link: unary calls as frames on one connection per node, same results as gRPC.

Frame encoding round-trips for any content; a bus and an echo node in this process show
the link carrying calls (replies, errors with trailing metadata, deadlines) exactly as
plain gRPC would, and a draining node refusing new frames as never run."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from hypothesis import given
from hypothesis import strategies as st

from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.server import BusServer
from powerbus.bus.transport.frames import (
    CALL,
    REPLY,
    TOKEN_BYTES,
    WHERE_PATH,
    MessageReader,
    decode,
    encode_call,
    encode_cancel,
    encode_hello,
    encode_reply,
    encode_where,
    framed,
)
from powerbus.bus.transport.link import NodeLink
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.echo import EchoNode
from powerbus.nodes.sdk import NodeConfig, NodeRunner
from powerbus.nodes.sdk.proxyless import ProxylessClient
from powerbus.nodes.testing import eventually

LOOPBACK = HostPort("127.0.0.1", 0)
text = st.text(max_size=40)
pairs = st.lists(st.tuples(text, st.one_of(text, st.binary(max_size=40))), max_size=5)


@given(
    call_id=st.integers(0, 2**32 - 1),
    method=text,
    timeout=st.one_of(st.none(), st.floats(0, 1e6)),
    metadata=pairs,
    payload=st.binary(max_size=300),
)
def test_call_frames_round_trip(call_id, method, timeout, metadata, payload):
    (frame,) = decode(encode_call(call_id, method, timeout, metadata, payload))
    assert (frame.kind, frame.call_id, frame.method, frame.timeout) == (
        CALL,
        call_id,
        method,
        timeout,
    )
    assert frame.metadata == tuple(metadata) and bytes(frame.payload) == payload


@given(
    code=st.integers(0, 16),
    details=text,
    initial=pairs,
    trailing=pairs,
    payload=st.binary(max_size=300),
    ran=st.booleans(),
)
def test_reply_frames_round_trip_and_batch(code, details, initial, trailing, payload, ran):
    one = encode_reply(9, code, details, initial, trailing, payload, ran=ran)
    frames = list(decode(one + encode_cancel(3) + one))
    assert [f.kind for f in frames] == [REPLY, 2, REPLY]
    first = frames[0]
    assert (first.code, first.details, first.ran) == (code, details, ran)
    assert (first.initial, first.trailing, bytes(first.payload)) == (
        tuple(initial),
        tuple(trailing),
        payload,
    )


@given(
    payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
)
def test_messages_cut_anywhere_decode_the_same(payloads, cuts):
    stream = b"".join(framed(encode_call(i, "/p.S/M", None, (), p)) for i, p in enumerate(payloads))
    reader = MessageReader()
    frames = []
    at = 0
    for cut in [*sorted(c for c in cuts if c < len(stream)), len(stream)]:
        frames += reader.feed(stream[at:cut])
        at = cut
    assert [(f.call_id, bytes(f.payload)) for f in frames] == list(enumerate(payloads))


@pytest.mark.parametrize(
    "garbage", [b"\x09", b"\x01\x00", encode_call(1, "m", None, (), b"xy")[:-1]]
)
def test_malformed_frames_are_refused(garbage):
    with pytest.raises(ValueError):
        list(decode(garbage))


@pytest.fixture
async def routed(tmp_path) -> AsyncIterator[tuple[NodeRunner, echo_pb2_grpc.EchoStub]]:
    config = BusConfig(grpc=LOOPBACK, http=LOOPBACK, db=f"sqlite:///{tmp_path / 'bus.db'}")
    async with BusServer(config=config) as bus:
        node_config = NodeConfig(id="echo-1", bus=bus.grpc_address, listen=LOOPBACK)
        async with NodeRunner(EchoNode(), config=node_config) as runner:
            await runner.wait_registered()
            async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
                yield runner, echo_pb2_grpc.EchoStub(channel)


async def _warm(stub: echo_pb2_grpc.EchoStub, runner: NodeRunner) -> None:
    # The link opens on the first call (which goes the plain way) and is used once up.
    for _ in range(50):
        await stub.Echo(echo_pb2.EchoRequest(message="warm"), timeout=5)
        if runner._link is not None and runner._link.calls:
            return
    raise AssertionError("the node link never carried a call")


async def test_calls_travel_the_link_with_metadata_and_deadline(routed):
    runner, stub = routed
    await _warm(stub, runner)
    before = runner._link.calls
    reply = await stub.Echo(
        echo_pb2.EchoRequest(message="载荷", payload=bytes(range(256))),
        timeout=3,
        metadata=(("x-powerbus-caller", "billing-1"), ("x-trace-bin", b"\x00\x01")),
    )
    assert runner._link.calls == before + 1
    assert (reply.message, reply.payload, reply.node_id) == ("载荷", bytes(range(256)), "echo-1")
    assert reply.metadata["x-powerbus-caller"] == "billing-1"
    assert 0 < reply.deadline_remaining.ToTimedelta().total_seconds() <= 3.05
    assert runner.load.snapshot().in_flight == 0


async def test_errors_keep_code_details_and_trailers(routed):
    runner, stub = routed
    await _warm(stub, runner)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.Echo(echo_pb2.EchoRequest(message="no such meter", fail_code=5), timeout=5)
    error = failure.value
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "no such meter")
    assert dict(error.trailing_metadata())["x-echo-failed"] == "echo-1"
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.Echo(echo_pb2.EchoRequest(fail_code=99), timeout=5)
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert invalid.value.details().startswith("fail_code: ")


async def test_deadlines_expire_over_the_link(routed):
    runner, stub = routed
    await _warm(stub, runner)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.Echo(echo_pb2.EchoRequest(delay=Duration(seconds=3)), timeout=0.3)
    assert failure.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert (await stub.Echo(echo_pb2.EchoRequest(message="after"), timeout=5)).message == "after"


async def test_a_draining_node_refuses_new_frames_as_never_run(routed):
    runner, stub = routed
    await _warm(stub, runner)
    link = runner._link
    slow = asyncio.ensure_future(
        stub.Echo(
            echo_pb2.EchoRequest(message="slow", delay=Duration(nanos=600_000_000)), timeout=5
        )
    )
    await eventually(lambda: runner.load.snapshot().in_flight == 1, timeout=5, what="slow call")
    draining = asyncio.ensure_future(link.drain(5))
    # The refusal says "never ran": with no other node, the caller sees UNAVAILABLE
    # naming the drain, and the non-idempotent Record did not run.
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.Record(echo_pb2.RecordRequest(request_id="r1"), timeout=5)
    assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "draining" in failure.value.details()
    # The call under way finishes on the link before the link closes.
    assert (await slow).message == "slow"
    await asyncio.wait_for(draining, 5)
    direct = grpc.aio.insecure_channel(str(runner.address))
    try:
        executions = await echo_pb2_grpc.EchoStub(direct).Executions(
            echo_pb2.ExecutionsRequest(request_id="r1"), timeout=5
        )
    finally:
        await direct.close()
    assert executions.executions == 0


async def test_a_node_without_the_link_is_left_alone():
    server = grpc.aio.server()
    echo_pb2_grpc.add_EchoServicer_to_server(echo_pb2_grpc.EchoServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            link = NodeLink(channel, f"127.0.0.1:{port}")
            assert not link.usable()  # starts opening
            await eventually(lambda: not link.supported, timeout=5, what="UNIMPLEMENTED seen")
            assert not link.usable() and not link.ready
            await link.close()
    finally:
        await server.stop(None)


async def test_a_connection_without_the_token_is_closed_unheard(routed):
    runner, stub = routed
    await _warm(stub, runner)
    reader, writer = await asyncio.open_connection("127.0.0.1", runner._link.port)
    try:
        writer.write(framed(encode_hello(b"\x00" * TOKEN_BYTES)))
        writer.write(framed(encode_call(1, "/powerbus.echo.v1.Echo/Echo", 5.0, (), b"")))
        await writer.drain()
        # Closed with our frames unread: an end of stream or a reset, never a reply.
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    assert (await stub.Echo(echo_pb2.EchoRequest(message="still"), timeout=5)).message == "still"


async def test_an_unreachable_link_port_leaves_calls_on_grpc():
    # A node whose Where names a port nobody listens on (a firewall, say).
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()

    async def where(_request: bytes, _context: object) -> bytes:
        return encode_where(dead_port, b"t" * TOKEN_BYTES)

    class _Where(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> object:
            return (
                grpc.unary_unary_rpc_method_handler(where) if details.method == WHERE_PATH else None
            )

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_Where(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            link = NodeLink(channel, f"127.0.0.1:{port}")
            assert not link.usable()
            await eventually(lambda: link._failures > 0, timeout=5, what="the failed connect")
            assert link.supported and not link.ready and not link.usable()
            await link.close()
    finally:
        await server.stop(None)


async def test_proxyless_calls_travel_the_link_too(routed):
    runner, _stub = routed
    bus_address = str(runner.config.bus)
    async with ProxylessClient(bus=bus_address, caller="billing-1", health_checks=False) as client:
        await client.wait_for_nodes("powerbus.echo.v1.Echo", timeout=15)
        echo = client.stub(echo_pb2_grpc.EchoStub)
        before = runner._link.calls
        for _ in range(50):
            await echo.Echo(echo_pb2.EchoRequest(message="warm"), timeout=5)
            if runner._link.calls > before:
                break
        assert runner._link.calls > before, "the proxyless client never used the link"
        reply = await echo.Echo(echo_pb2.EchoRequest(message="直连"), timeout=3)
        assert (reply.message, reply.metadata["x-powerbus-caller"]) == ("直连", "billing-1")
        assert 0 < reply.deadline_remaining.ToTimedelta().total_seconds() <= 3.05
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await echo.Echo(echo_pb2.EchoRequest(message="no such meter", fail_code=5), timeout=5)
        assert failure.value.code() is grpc.StatusCode.NOT_FOUND
        assert failure.value.details() == "no such meter"
        assert dict(failure.value.trailing_metadata())["x-echo-failed"] == "echo-1"
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await echo.Echo(echo_pb2.EchoRequest(delay=Duration(seconds=3)), timeout=0.3)
        assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
