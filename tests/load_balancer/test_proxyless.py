"""Proxyless mode: the SDK balances with the same load_balancer code, calls nodes directly,
takes up policy changes, and reports its traffic so the bus's monitoring shows it.

Real processes: a bus and echo nodes on loopback; the client runs in the test."""

from __future__ import annotations

import asyncio
import collections
import urllib.request

import grpc
import pytest

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.proxyless import ProxylessClient
from powerbus.nodes.testing import eventually
from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc

pytestmark = pytest.mark.timeout(120)

ECHO = "powerbus.echo.v1.Echo"


@pytest.fixture
def nodes(bus, node_factory):
    return [node_factory("echo", bus=bus, node_id=f"echo-{i}") for i in (1, 2)]


async def test_calls_go_straight_to_the_nodes_in_turn(bus, nodes):
    async with ProxylessClient(bus=bus.grpc, caller="billing-1", report_interval=0.2) as client:
        await client.wait_for_nodes(ECHO, count=2, timeout=15)
        echo = client.stub(echo_pb2_grpc.EchoStub)
        replies = [await echo.Echo(echo_pb2.EchoRequest(message="hi"), timeout=5) for _ in range(6)]
        assert collections.Counter(r.node_id for r in replies) == {"echo-1": 3, "echo-2": 3}
        assert replies[0].metadata["x-powerbus-caller"] == "billing-1"
        assert 0 < replies[0].deadline_remaining.ToTimedelta().total_seconds() <= 5.05
        streamed = [r async for r in echo.Expand(echo_pb2.ExpandRequest(message="m", count=3))]
        assert [r.index for r in streamed] == [0, 1, 2]


async def test_traffic_reaches_the_bus_monitoring(bus, nodes):
    async with ProxylessClient(bus=bus.grpc, caller="billing-1", report_interval=0.2) as client:
        await client.wait_for_nodes(ECHO, count=2, timeout=15)
        echo = client.stub(echo_pb2_grpc.EchoStub)
        for _ in range(4):
            await echo.Echo(echo_pb2.EchoRequest(message="hi"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await echo.Echo(echo_pb2.EchoRequest(fail_code=5), timeout=5)
        assert failure.value.code() is grpc.StatusCode.NOT_FOUND
        await eventually(lambda: client.traffic.sent > 0, timeout=10, what="a traffic report")

    def proxyless_lines() -> list[str]:
        with urllib.request.urlopen(f"http://{bus.http}/metrics", timeout=5) as response:
            text = response.read().decode()
        return [
            line
            for line in text.splitlines()
            if line.startswith("powerbus_requests_total") and 'origin="proxyless"' in line
        ]

    lines = await eventually(proxyless_lines, timeout=10, what="proxyless traffic in /metrics")
    ok = sum(float(x.rsplit(" ", 1)[1]) for x in lines if 'code="OK"' in x)
    failed = sum(float(x.rsplit(" ", 1)[1]) for x in lines if 'code="NOT_FOUND"' in x)
    assert (ok, failed) == (4.0, 1.0)
    assert all('caller="billing-1"' in x for x in lines)


async def test_policy_changes_reach_the_client(bus, nodes):
    async with ProxylessClient(bus=bus.grpc, caller="t", report_interval=5) as client:
        await client.wait_for_nodes(ECHO, count=2, timeout=15)
        async with grpc.aio.insecure_channel(bus.grpc) as channel:
            await policy_pb2_grpc.PoliciesStub(channel).SetPolicy(
                policy_pb2.SetPolicyRequest(service=ECHO, set={"picker": "ring_hash"}), timeout=5
            )
        await eventually(
            lambda: client.balancer(ECHO).settings.picker.value == "ring_hash",
            timeout=5,
            what="the client to take the policy up",
        )
        echo = client.stub(echo_pb2_grpc.EchoStub)
        for key in ("meter-1", "meter-2", "meter-3"):
            served = {
                (await echo.Echo(
                    echo_pb2.EchoRequest(), timeout=5, metadata=(("x-powerbus-key", key),)
                )).node_id
                for _ in range(5)
            }  # fmt: skip
            assert len(served) == 1


async def test_a_node_that_goes_away_is_dropped_and_calls_fail_over(bus, node_factory):
    stay = node_factory("echo", bus=bus, node_id="echo-stay")
    leave = node_factory("echo", bus=bus, node_id="echo-leave")
    async with ProxylessClient(bus=bus.grpc, caller="t") as client:
        await client.wait_for_nodes(ECHO, count=2, timeout=15)
        echo = client.stub(echo_pb2_grpc.EchoStub)
        leave.kill()
        # Echo has no side effects: a call refused by the dead node goes to the other.
        served = {(await echo.Echo(echo_pb2.EchoRequest(), timeout=5)).node_id for _ in range(6)}
        assert served == {"echo-stay"}
        assert stay.running


async def test_no_node_is_a_clear_unavailable(bus):
    async with ProxylessClient(bus=bus.grpc, caller="t") as client:
        echo = client.stub(echo_pb2_grpc.EchoStub)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await echo.Echo(echo_pb2.EchoRequest(), timeout=2)
        assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "powerbus.echo.v1.Echo" in failure.value.details()


async def test_a_node_that_leaves_has_its_channel_and_link_closed(bus, nodes):
    async with ProxylessClient(bus=bus.grpc, caller="billing-1", health_checks=False) as client:
        await client.wait_for_nodes(ECHO, count=2, timeout=15)
        echo = client.stub(echo_pb2_grpc.EchoStub)
        for _ in range(4):
            await echo.Echo(echo_pb2.EchoRequest(message="hi"), timeout=5)
        assert client.connected() == {n.address for n in nodes}
        assert await asyncio.to_thread(nodes[1].stop) == 0
        await eventually(
            lambda: client.connected() == {nodes[0].address},
            timeout=15,
            what="the departed node's channel and link retired",
        )
        reply = await echo.Echo(echo_pb2.EchoRequest(message="after"), timeout=5)
        assert reply.node_id == "echo-1"
