"""The router and the proxyless client take one unary call path
(:mod:`powerbus.bus.transport.unary`): the same calls through each give the same results.

Real processes: a bus and two echo nodes on loopback. Each scenario is made through the
bus with a plain grpc.aio stub and straight to the nodes with the SDK's proxyless client;
node ids are scrubbed, since the two balance independently.
"""

from __future__ import annotations

import re
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from powerbus.bus.transport.unary import read_headers
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.proxyless import ProxylessClient

pytestmark = pytest.mark.timeout(120)

ECHO = "powerbus.echo.v1.Echo"
CALLER = (("x-powerbus-caller", "billing-1"),)


def _delay(seconds: float) -> Duration:
    duration = Duration()
    duration.FromTimedelta(timedelta(seconds=seconds))
    return duration


# name -> (request, timeout, extra metadata)
SCENARIOS: dict[str, tuple[echo_pb2.EchoRequest, float, tuple[tuple[str, str], ...]]] = {
    "plain": (echo_pb2.EchoRequest(message="hi"), 5.0, ()),
    "metadata": (echo_pb2.EchoRequest(message="m"), 5.0, (("x-tenant", "t1"), ("x-trace", "a"))),
    "affinity key": (echo_pb2.EchoRequest(message="k"), 5.0, (("x-powerbus-key", "m-7"),)),
    "error with trailers": (echo_pb2.EchoRequest(message="no meter m-1", fail_code=5), 5.0, ()),
    "invalid argument": (echo_pb2.EchoRequest(message="bad", fail_code=3), 5.0, ()),
    "deadline": (echo_pb2.EchoRequest(message="slow", delay=_delay(2.0)), 0.3, ()),
    "retries exhausted": (echo_pb2.EchoRequest(message="down", fail_code=14), 5.0, ()),
    "over the link's size": (echo_pb2.EchoRequest(payload=b"x" * 300_000), 5.0, ()),
    "over the node's limit": (echo_pb2.EchoRequest(payload=b"x" * (5 << 20)), 5.0, ()),
    **{
        f"idempotent header {spelling!r}": (
            echo_pb2.EchoRequest(message="i", fail_code=14),
            5.0,
            (("x-powerbus-idempotent", spelling),),
        )
        for spelling in ("1", "true", " Yes ", "TRUE", "no")
    },
}


def _scrub(text: str) -> str:
    return re.sub(r"echo-\d", "echo-N", text)


async def _outcome(call: object) -> tuple[object, ...]:
    try:
        reply = await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        trailing = sorted(
            (k, _scrub(v)) for k, v in (error.trailing_metadata() or ()) if k.startswith("x-")
        )
        return (error.code().name, _scrub(error.details() or ""), trailing)
    metadata = dict(reply.metadata)
    return ("OK", reply.message, len(reply.payload), metadata, reply.node_id.startswith("echo-"))


@pytest.fixture
def quiet_bus(bus_factory, tmp_path):
    # Breakers and ejection would turn later scenarios into refusals: each path's own
    # balancer would see the same failures, but the refusals name times left to the
    # millisecond.
    policy = tmp_path / "policy.toml"
    policy.write_text(
        "[policy]\n"
        '"breaker.enabled" = false\n"service_breaker.enabled" = false\n'
        '"outlier.enabled" = false\n',
        encoding="utf-8",
    )
    return bus_factory(policy_file=str(policy))


@pytest.fixture
def nodes(quiet_bus, node_factory):
    return [node_factory("echo", bus=quiet_bus, node_id=f"echo-{i}") for i in (1, 2)]


async def test_router_and_proxyless_give_the_same_results(quiet_bus, nodes):
    bus = quiet_bus
    async with (
        grpc.aio.insecure_channel(
            bus.grpc, options=[("grpc.max_send_message_length", 64 << 20)]
        ) as channel,
        ProxylessClient(bus=bus.grpc, caller="billing-1", health_checks=False) as client,
    ):
        await client.wait_for_nodes(ECHO, count=2, timeout=15)
        routed = echo_pb2_grpc.EchoStub(channel)
        direct = client.stub(echo_pb2_grpc.EchoStub)
        for name, (request, timeout, extra) in SCENARIOS.items():
            metadata = CALLER + extra
            through_bus = await _outcome(routed.Echo(request, timeout=timeout, metadata=metadata))
            proxyless = await _outcome(direct.Echo(request, timeout=timeout, metadata=metadata))
            assert through_bus == proxyless, name


def test_idempotent_header_spellings_are_read_one_way():
    said = [read_headers((("x-powerbus-idempotent", v),)).idempotent for v in SPELLINGS]
    assert said == [True, True, True, True, True, False, False, False]


SPELLINGS = ("1", "true", "yes", " Yes ", b"TRUE", "no", "0", "")
