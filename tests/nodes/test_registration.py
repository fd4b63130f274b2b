"""A NodeRunner against the real registry servicer: register, heartbeat, re-register after
the lease lapsed or the bus came back, deregister on stop."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import timedelta

import grpc
import pytest

from powerbus.bus.kernel.addresses import HostPort
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.echo import EchoNode
from powerbus.nodes.sdk import BusClient, Node, NodeConfig, NodePriority, NodeRunner
from powerbus.nodes.testing import eventually
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

UP, DOWN = registry_pb2.NODE_HEALTH_UP, registry_pb2.NODE_HEALTH_DOWN


class Caller(Node, echo_pb2_grpc.EchoServicer):
    kind = "caller"
    echo = BusClient(echo_pb2_grpc.EchoStub)
    registry = BusClient(registry_pb2_grpc.RegistryStub, required=False)

    def metadata(self) -> dict[str, str]:
        return {"version": "1.2.3"}


async def node_of(stub, node_id: str, *, include_down: bool = False):
    reply = await stub.ListNodes(
        registry_pb2.ListNodesRequest(include_down=include_down), timeout=5
    )
    return next((n for n in reply.nodes if n.node_id == node_id), None)


async def test_register_announces_everything_the_node_declared(registry, registry_stub, tmp_path):
    config = NodeConfig(
        id="caller-1",
        bus=registry.address,
        state_file=tmp_path / "caller-1.json",
        weight=40,
        zone="east",
        priority=NodePriority.STANDBY,
    )
    async with NodeRunner(Caller(), config=config) as runner:
        lease = await asyncio.wait_for(runner.wait_registered(), timeout=10)
        node = await node_of(registry_stub, "caller-1")
        state = json.loads(config.state_file.read_text())  # type: ignore[union-attr]
    assert node is not None
    assert (node.kind, node.address, node.health) == ("caller", str(runner.address), UP)
    assert list(node.services) == ["powerbus.echo.v1.Echo"]
    assert (node.weight, node.zone, node.priority) == (40, "east", registry_pb2.PRIORITY_STANDBY)
    assert [(d.service, d.required) for d in node.dependencies] == [
        ("powerbus.echo.v1.Echo", True),
        ("powerbus.registry.v1.Registry", False),
    ]
    assert dict(node.metadata) == {"version": "1.2.3"}
    assert node.lease_id == "" and lease.lease_id  # only the holder learns its lease
    assert lease.ttl == timedelta(seconds=1)
    assert timedelta(0) < lease.heartbeat_interval < lease.ttl
    assert state == {"grpc": str(runner.address), "node_id": "caller-1", "kind": "caller"}


async def test_a_requested_lease_ttl_is_granted(registry):
    config = NodeConfig(id="echo-ttl", bus=registry.address, lease_ttl=timedelta(seconds=3))
    async with NodeRunner(EchoNode(), config=config) as runner:
        lease = await asyncio.wait_for(runner.wait_registered(), timeout=10)
    assert lease.ttl == timedelta(seconds=3)


async def test_heartbeats_renew_the_lease_and_report_the_load(registry, registry_stub):
    config = NodeConfig(id="echo-hb", bus=registry.address)
    async with NodeRunner(EchoNode(), config=config) as runner:
        await asyncio.wait_for(runner.wait_registered(), timeout=10)
        async with grpc.aio.insecure_channel(str(runner.address)) as channel:
            echo = echo_pb2_grpc.EchoStub(channel)
            await echo.Echo(echo_pb2.EchoRequest(message="a"), timeout=5)
            with pytest.raises(grpc.aio.AioRpcError):
                await echo.Echo(echo_pb2.EchoRequest(message="b", fail_code=13), timeout=5)

        async def reported():
            node = await node_of(registry_stub, "echo-hb")
            return node if node and node.load.requests_total == 2 else None

        node = await eventually(reported, timeout=10, what="load in a heartbeat")
        # Still up several lease lengths later: the heartbeats keep the lease.
        first_expiry = node.lease_expires_at.ToDatetime()
        renewed = await eventually(
            lambda: _expires_after(registry_stub, "echo-hb", first_expiry + registry.lease_ttl),
            timeout=10,
            what="lease renewed past its first expiry",
        )
        assert renewed.health == UP
        assert runner.registration is not None and runner.registration.registrations == 1
    assert (node.load.requests_total, node.load.errors_total, node.load.in_flight) == (2, 1, 0)


async def _expires_after(stub, node_id, moment):
    node = await node_of(stub, node_id)
    return node if node and node.lease_expires_at.ToDatetime() > moment else None


async def test_a_lapsed_lease_is_registered_again(registry, registry_stub):
    config = NodeConfig(id="echo-lapse", bus=registry.address)
    async with NodeRunner(EchoNode(), config=config) as runner:
        first = await asyncio.wait_for(runner.wait_registered(), timeout=10)
        registration = runner.registration
        assert registration is not None
        # The registry's clock jumps past the lease: the next heartbeat is NOT_FOUND.
        registry.clock_offset = timedelta(seconds=30)
        await eventually(lambda: registration.registrations == 2, timeout=10, what="re-register")
        current = registration.lease
        node = await node_of(registry_stub, "echo-lapse")
    assert node is not None and node.health == UP
    assert current is not None and current.lease_id != first.lease_id


async def test_stop_deregisters_at_once(registry, registry_stub):
    config = NodeConfig(id="echo-stop", bus=registry.address)
    runner = NodeRunner(EchoNode(), config=config)
    await runner.start()
    await asyncio.wait_for(runner.wait_registered(), timeout=10)
    await runner.stop()
    await runner.stop()  # idempotent
    assert await node_of(registry_stub, "echo-stop") is None
    down = await node_of(registry_stub, "echo-stop", include_down=True)
    assert down is not None and down.health == DOWN


async def test_a_node_started_before_its_bus_registers_once_the_bus_is_up(
    registry_factory, caplog, tmp_path
):
    with socket.socket() as sock:  # a free port for the bus that is not there yet
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state_file = tmp_path / "early.json"
    config = NodeConfig(id="early", bus=HostPort("127.0.0.1", port), state_file=state_file)
    caplog.set_level(logging.WARNING, logger="powerbus.nodes.sdk.registration")
    async with NodeRunner(EchoNode(), config=config) as runner:
        # Serving already, registering in the background; no state file until registered.
        async with grpc.aio.insecure_channel(str(runner.address)) as channel:
            reply = await echo_pb2_grpc.EchoStub(channel).Echo(
                echo_pb2.EchoRequest(message="m"), timeout=5
            )
        assert reply.node_id == "early"
        await eventually(
            lambda: "register attempt 2 failed" in caplog.text, timeout=10, what="two retries"
        )
        assert not state_file.exists()
        await asyncio.to_thread(registry_factory, port=port)
        await asyncio.wait_for(runner.wait_registered(), timeout=15)
        assert json.loads(state_file.read_text())["grpc"] == str(runner.address)


async def test_a_bus_restart_longer_than_the_lease_ends_in_a_new_registration(
    registry_factory, tmp_path
):
    first = await asyncio.to_thread(registry_factory)
    config = NodeConfig(id="echo-restart", bus=first.address)
    async with NodeRunner(EchoNode(), config=config) as runner:
        await asyncio.wait_for(runner.wait_registered(), timeout=10)
        registration = runner.registration
        assert registration is not None
        await asyncio.to_thread(first.stop)
        # Same database, same port, and the outage outlasted the lease.
        restarted = await asyncio.to_thread(registry_factory, port=first.address.port)
        restarted.clock_offset = timedelta(seconds=30)
        await eventually(lambda: registration.registrations == 2, timeout=15, what="re-register")
        async with grpc.aio.insecure_channel(str(restarted.address)) as channel:
            node = await node_of(registry_pb2_grpc.RegistryStub(channel), "echo-restart")
    assert node is not None and node.health == UP
