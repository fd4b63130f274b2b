"""Chaos with real processes: nodes killed, frozen, slowed, and a hot standby taking over.

A bus, echo nodes and a client driving steady load through the bus; then something bad
happens to a node and the test checks what the callers saw.
"""

from __future__ import annotations

import collections
import time
import uuid

import grpc
import pytest
from chaos_tools import Load, Throttle, balancer_nodes, set_policy

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

ECHO = "powerbus.echo.v1.Echo"


def echo_load(stub: echo_pb2_grpc.EchoStub, *, timeout: float = 5.0, workers: int = 4) -> Load:
    async def call() -> str:
        reply = await stub.Echo(echo_pb2.EchoRequest(message="load"), timeout=timeout)
        return reply.node_id

    return Load(call, workers=workers)


async def test_sigkill_loses_no_idempotent_call_and_runs_nothing_twice(bus, node_factory):
    nodes = {f"echo-{i}": node_factory("echo", bus=bus, node_id=f"echo-{i}") for i in (1, 2, 3)}
    records: list[tuple[str, str, str]] = []  # request id, node or "", code

    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)

        async def record() -> str:
            request_id = uuid.uuid4().hex
            try:
                reply = await stub.Record(echo_pb2.RecordRequest(request_id=request_id), timeout=5)
            except grpc.aio.AioRpcError as error:
                records.append((request_id, "", error.code().name))
                raise
            records.append((request_id, reply.node_id, "OK"))
            return reply.node_id

        async with echo_load(stub) as load, Load(record, workers=2):
            await load.run_for(1.0)
            killed_at = time.monotonic()
            nodes["echo-2"].kill()
            await load.run_for(2.0)
        after = load.since(killed_at)
        assert {r.code for r in load.results} == {"OK"}  # idempotent Echo: no failure at all
        assert {r.node for r in after[-20:]} == {"echo-1", "echo-3"}

        # Record is not idempotent: it may fail, but never runs on two nodes.
        live = ("echo-1", "echo-3")
        for request_id, node, code in records:
            counts = {}
            for node_id in live:
                direct = echo_pb2_grpc.EchoStub(grpc.aio.insecure_channel(nodes[node_id].address))
                reply = await direct.Executions(
                    echo_pb2.ExecutionsRequest(request_id=request_id), timeout=5
                )
                counts[node_id] = reply.executions
            if code == "OK" and node in live:
                assert counts == {n: int(n == node) for n in live}, (request_id, node)
            else:  # failed, or served by the node that died: nowhere else
                assert sum(counts.values()) == 0, (request_id, node, code, counts)
        assert sum(1 for _, _, code in records if code == "OK") > 20


async def test_sigstop_deadlines_hold_breaker_opens_and_the_node_comes_back(bus, node_factory):
    nodes = {f"echo-{i}": node_factory("echo", bus=bus, node_id=f"echo-{i}") for i in (1, 2, 3)}
    await set_policy(
        bus.grpc,
        ECHO,
        **{
            "retry.per_try_timeout": "150ms",
            "breaker.window": "6",
            "breaker.min_calls": "3",
            "breaker.open": "500ms",
            "breaker.max_open": "1s",
            "breaker.probes": "2",
            "outlier.enabled": "false",
            "health.interval": "300ms",
        },
    )
    frozen = nodes["echo-3"]
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        async with echo_load(stub, timeout=1.0) as load:
            await load.run_for(0.5)
            frozen.pause()
            stopped_at = time.monotonic()
            await eventually(
                lambda: balancer_nodes(bus.http, ECHO)["echo-3"]["breaker"] != "closed",
                timeout=5,
                what="echo-3's breaker to open",
            )
            moved_at = await load.run_for(1.5)
            frozen.resume()
            await eventually(
                lambda: any(r.node == "echo-3" for r in load.since(time.monotonic() - 0.3)),
                timeout=10,
                what="echo-3 to serve again",
            )
            await load.run_for(0.3)
        during = [r for r in load.since(stopped_at) if r.started < moved_at + 1.5]
        # Deadlines hold: nothing waited past its 1 s deadline (plus scheduling slack)...
        assert max(r.latency for r in load.results) < 1.5
        # ... and with a per-try timeout the calls moved on instead of failing.
        assert [r.code for r in during if r.code != "OK"] == []
        assert {r.node for r in load.since(moved_at)} >= {"echo-1", "echo-2", "echo-3"}
        view = balancer_nodes(bus.http, ECHO)["echo-3"]
        assert view["breaker"] == "closed" and view["in_rotation"]


async def test_a_slowed_node_gets_a_shrinking_share_under_peak_ewma(bus, node_factory):
    nodes = {f"echo-{i}": node_factory("echo", bus=bus, node_id=f"echo-{i}") for i in (1, 2, 3)}
    # A short decay so that one hiccup of this shared machine (a 50 ms pause of a node
    # looks exactly like a slow node to peak EWMA) is forgotten within the window.
    await set_policy(
        bus.grpc, ECHO, picker="peak_ewma", **{"peak_ewma.decay": "0.3s", "health.enabled": "false"}
    )
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        async with echo_load(stub, workers=3) as load:
            # Warm-up, not counted: every node's first call also pays for its connection.
            await load.run_for(1.0)
            before_at = await load.run_for(2.0)
            with Throttle(nodes["echo-3"].pid, stopped_s=0.04, period_s=0.05):
                slow_at = await load.run_for(0.5)
                late_at = await load.run_for(2.0)
            before = collections.Counter(
                r.node for r in load.results if before_at <= r.started < slow_at
            )
            late = collections.Counter(r.node for r in load.since(late_at))
    share_before = before["echo-3"] / sum(before.values())
    share_late = late["echo-3"] / max(1, sum(late.values()))
    # Before, echo-3 takes a part of its own (not a third: peak EWMA reacts to every
    # hiccup of this shared machine, and one left it 9.9 % in CI); slowed down, that part
    # shrinks to well under half. The first bound only makes sure there was a part to lose.
    assert share_before > 0.05, before
    assert share_late < share_before / 2, (before, late)


async def test_standby_serves_while_primaries_are_down_and_gives_traffic_back(
    bus_factory, node_factory
):
    bus = bus_factory(lease_ttl="2s")
    primaries = [node_factory("echo", bus=bus, node_id=f"primary-{i}") for i in (1, 2)]
    standby = node_factory("echo", bus=bus, node_id="standby-1", priority="standby")
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        async with echo_load(stub) as load:
            start = await load.run_for(0.8)
            assert {r.node for r in load.since(start)} == {"primary-1", "primary-2"}
            for primary in primaries:
                primary.kill()
            killed_at = time.monotonic()
            await eventually(
                lambda: (
                    [r.node for r in load.since(time.monotonic() - 0.3)][-5:] == ["standby-1"] * 5
                ),
                timeout=10,
                what="the standby to take over",
            )
            for i in (3, 4):
                node_factory("echo", bus=bus, node_id=f"primary-{i}")
            await eventually(
                lambda: (
                    {r.node for r in load.since(time.monotonic() - 0.5)}
                    == {"primary-3", "primary-4"}
                ),
                timeout=15,
                what="traffic to return to the primaries",
            )
        assert standby.running
        assert {r.code for r in load.since(killed_at)} == {"OK"}
