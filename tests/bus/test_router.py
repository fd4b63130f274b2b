"""The router with real processes: a bus and echo nodes on loopback, called with stubs."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def echo_nodes(bus, node_factory):
    return [node_factory("echo", bus=bus, node_id=f"echo-{i}") for i in (1, 2)]


@pytest.fixture
def stub(bus):
    with grpc.insecure_channel(bus.grpc) as channel:
        yield echo_pb2_grpc.EchoStub(channel)


def test_unary_calls_reach_every_node_in_turn(echo_nodes, stub):
    served = [stub.Echo(echo_pb2.EchoRequest(message="hi"), timeout=5).node_id for _ in range(6)]
    assert sorted(set(served)) == ["echo-1", "echo-2"]
    assert served[0::2] == [served[0]] * 3 and served[1::2] == [served[1]] * 3


def test_reply_bytes_are_the_nodes_untouched(echo_nodes, stub):
    payload = bytes(range(256)) * 64
    reply = stub.Echo(echo_pb2.EchoRequest(message="载荷", payload=payload), timeout=5)
    assert (reply.message, reply.payload) == ("载荷", payload)


def test_server_streaming(echo_nodes, stub):
    replies = list(stub.Expand(echo_pb2.ExpandRequest(message="m", count=5), timeout=5))
    assert [r.index for r in replies] == [0, 1, 2, 3, 4]
    assert len({r.node_id for r in replies}) == 1


def test_client_streaming(echo_nodes, stub):
    requests = iter([echo_pb2.EchoRequest(message=w) for w in ("a", "b", "c")])
    reply = stub.Collect(requests, timeout=5)
    assert "a" in reply.message and "c" in reply.message
    assert reply.node_id in {"echo-1", "echo-2"}


def test_bidi_streaming(echo_nodes, stub):
    requests = iter([echo_pb2.EchoRequest(message=str(i)) for i in range(4)])
    replies = list(stub.Chat(requests, timeout=5))
    assert [r.message for r in replies] == ["0", "1", "2", "3"]


def test_metadata_reaches_the_node(echo_nodes, stub):
    reply = stub.Echo(
        echo_pb2.EchoRequest(message="m"),
        timeout=5,
        metadata=(("x-powerbus-caller", "billing-1"), ("x-trace", "abc")),
    )
    assert reply.metadata["x-powerbus-caller"] == "billing-1"
    assert reply.metadata["x-trace"] == "abc"


# gRPC carries a deadline as a timeout header of limited precision: even a direct call can
# see a few milliseconds more than its caller set.
GRPC_DEADLINE_PRECISION_S = 0.05


def test_deadline_propagates_to_the_node(echo_nodes, stub):
    reply = stub.Echo(echo_pb2.EchoRequest(message="m"), timeout=3)
    remaining = reply.deadline_remaining.ToTimedelta().total_seconds()
    assert 0 < remaining <= 3 + GRPC_DEADLINE_PRECISION_S
    short = stub.Echo(echo_pb2.EchoRequest(message="m"), timeout=0.5)
    assert (
        0
        < short.deadline_remaining.ToTimedelta().total_seconds()
        <= 0.5 + GRPC_DEADLINE_PRECISION_S
    )


def test_no_deadline_arrives_as_no_deadline(echo_nodes, stub):
    reply = stub.Echo(echo_pb2.EchoRequest(message="m"))
    assert reply.deadline_remaining.ToTimedelta().total_seconds() == 0


def test_deadline_expires_through_the_bus(echo_nodes, stub):
    with pytest.raises(grpc.RpcError) as failure:
        stub.Echo(echo_pb2.EchoRequest(message="slow", delay=Duration(seconds=5)), timeout=0.5)
    assert failure.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_status_details_and_trailers_come_back(echo_nodes, stub):
    request = echo_pb2.EchoRequest(
        message="no such meter", fail_code=grpc.StatusCode.NOT_FOUND.value[0]
    )
    with pytest.raises(grpc.RpcError) as failure:
        stub.Echo(request, timeout=5)
    error = failure.value
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such meter"
    assert dict(error.trailing_metadata())["x-echo-failed"] in {"echo-1", "echo-2"}


def test_streaming_failure_comes_back(echo_nodes, stub):
    requests = iter([echo_pb2.EchoRequest(message="x", fail_code=grpc.StatusCode.ABORTED.value[0])])
    with pytest.raises(grpc.RpcError) as failure:
        list(stub.Chat(requests, timeout=5))
    assert failure.value.code() is grpc.StatusCode.ABORTED


def test_unregistered_service_is_unimplemented_and_named(bus):
    with grpc.insecure_channel(bus.grpc) as channel:
        call = channel.unary_unary("/powerbus.billing.v1.Billing/Quote")
        with pytest.raises(grpc.RpcError) as failure:
            call(b"", timeout=5)
    assert failure.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "powerbus.billing.v1.Billing" in failure.value.details()


def test_unknown_method_of_a_registered_service_is_named(echo_nodes, bus):
    with grpc.insecure_channel(bus.grpc) as channel, pytest.raises(grpc.RpcError) as failure:
        channel.unary_unary("/powerbus.echo.v1.Echo/Shout")(b"", timeout=5)
    assert failure.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "Shout" in failure.value.details()


def test_service_without_a_healthy_node_is_unavailable_and_named(bus, node_factory):
    node = node_factory("echo", bus=bus, node_id="echo-only")
    assert node.stop() == 0
    with grpc.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.Echo(echo_pb2.EchoRequest(message="m"), timeout=5)
    assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "powerbus.echo.v1.Echo" in failure.value.details()


@pytest.mark.parametrize(
    "path",
    ["/", "//", "/nonsense", "/a/b/c", "/powerbus.echo.v1.Echo/", "/\u7535\u529b/\u8c03\u7528"],
)
def test_malformed_paths_do_not_hurt_the_bus(echo_nodes, bus, stub, path):
    with grpc.insecure_channel(bus.grpc) as channel, pytest.raises(grpc.RpcError) as failure:
        channel.unary_unary(path)(b"\x00\xff", timeout=5)
    assert failure.value.code() in {grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL}
    assert stub.Echo(echo_pb2.EchoRequest(message="still here"), timeout=5).message == "still here"


def test_garbage_request_bytes_fail_at_the_node_not_the_bus(echo_nodes, bus, stub):
    with grpc.insecure_channel(bus.grpc) as channel, pytest.raises(grpc.RpcError) as failure:
        channel.unary_unary("/powerbus.echo.v1.Echo/Echo")(b"\xff\xff\xff\xff", timeout=5)
    assert failure.value.code() is not grpc.StatusCode.OK
    assert stub.Echo(echo_pb2.EchoRequest(message="ok"), timeout=5).message == "ok"


def test_caller_cancelling_a_stream_leaves_the_bus_serving(echo_nodes, stub):
    stream = stub.Expand(
        echo_pb2.ExpandRequest(message="m", count=1000, interval=Duration(nanos=10_000_000)),
        timeout=30,
    )
    first = next(stream)
    stream.cancel()
    assert first.index == 0
    assert stub.Echo(echo_pb2.EchoRequest(message="after"), timeout=5).message == "after"
