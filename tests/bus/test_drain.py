"""Stopping with calls in flight: SIGTERM loses no call, for a node and for the bus.

Each in-flight call is a server stream whose first reply has arrived before the signal,
so the call is provably under way at a known node when the signal lands.
"""

from __future__ import annotations

import signal

import grpc
from google.protobuf.duration_pb2 import Duration

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

REPLIES = 5
SLOW_STREAM = echo_pb2.ExpandRequest(
    message="m", count=REPLIES, interval=Duration(nanos=200_000_000)
)


def _streams_on(stub, node_ids: set[str], *, attempts: int = 10):
    """Open streams through the bus until each of ``node_ids`` serves one; first reply read."""
    streams = {}
    for _ in range(attempts):
        stream = stub.Expand(SLOW_STREAM, timeout=15)
        first = next(stream)
        if first.node_id in streams:
            stream.cancel()
        else:
            streams[first.node_id] = stream
        if set(streams) == node_ids:
            return streams
    raise AssertionError(f"streams reached only {sorted(streams)}")


def test_sigterm_on_a_node_loses_no_in_flight_call(bus, node_factory):
    leaving = node_factory("echo", bus=bus, node_id="echo-leaving")
    node_factory("echo", bus=bus, node_id="echo-staying")
    with grpc.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        streams = _streams_on(stub, {"echo-leaving", "echo-staying"})
        assert leaving.stop(signal.SIGTERM) == 0
        for node_id, stream in streams.items():
            rest = list(stream)
            assert [r.index for r in rest] == list(range(1, REPLIES)), node_id
        after = {stub.Echo(echo_pb2.EchoRequest(message="m"), timeout=5).node_id for _ in range(6)}
    assert after == {"echo-staying"}


def test_sigterm_on_the_bus_finishes_calls_it_is_forwarding(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    with grpc.insecure_channel(bus.grpc) as channel:
        stream = echo_pb2_grpc.EchoStub(channel).Expand(SLOW_STREAM, timeout=15)
        assert next(stream).index == 0
        # Stopping blocks until the bus exits, so read the rest from a stream already open.
        assert bus.stop(signal.SIGTERM) == 0
        assert [r.index for r in stream] == list(range(1, REPLIES))
