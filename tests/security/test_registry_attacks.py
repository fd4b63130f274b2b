"""Attacks on the registry in the loopback development mode (no TLS, no identities), each
with real processes: a bus, two echo nodes, and the attacker as a raw gRPC client. Each
is refused, and legitimate traffic through the bus keeps its success rate meanwhile."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

import grpc
import pytest
from security_support import (
    ECHO,
    T,
    echo_traffic,
    list_nodes,
    register_request,
    until_done,
    wait_up,
)

from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

pytestmark = pytest.mark.timeout(90)


class _Rogue(registry_pb2_grpc.NodeInstanceServicer):
    """Answers Identify as the node it wants to take over, with its own secret's digest."""

    def __init__(self, node_id: str, secret: bytes) -> None:
        self._node_id, self._digest = node_id, hashlib.sha256(secret).digest()

    async def Identify(self, request, context):  # type: ignore[no-untyped-def]
        return registry_pb2.IdentifyResponse(node_id=self._node_id, instance_digest=self._digest)


async def test_lease_ids_never_leak_and_a_live_id_cannot_be_taken(bus, node_factory) -> None:
    node_factory("echo", bus=bus, node_id="echo-1")
    node_factory("echo", bus=bus, node_id="echo-2")
    await wait_up(bus.grpc, {"echo-1", "echo-2"})
    secret = secrets.token_bytes(32)
    rogue = grpc.aio.server()
    registry_pb2_grpc.add_NodeInstanceServicer_to_server(_Rogue("echo-1", secret), rogue)
    rogue_address = f"127.0.0.1:{rogue.add_insecure_port('127.0.0.1:0')}"
    await rogue.start()
    refusals: dict[str, set[str]] = {}

    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        # Nobody but the holder learns a lease: not from ListNodes, not from Watch.
        assert {n.lease_id for n in await list_nodes(bus.grpc)} == {""}
        watch = stub.Watch(registry_pb2.WatchRequest(), timeout=T)
        snapshot = [await watch.read(), await watch.read()]
        watch.cancel()
        assert {e.node.node_id for e in snapshot} == {"echo-1", "echo-2"}
        assert {e.node.lease_id for e in snapshot} == {""}

        async def refused(name: str, call: object) -> None:
            try:
                await call  # type: ignore[misc]
            except grpc.aio.AioRpcError as exc:
                refusals.setdefault(name, set()).add(f"{exc.code().name}: {exc.details()}")
            else:
                refusals.setdefault(name, set()).add("ACCEPTED")

        async def attack() -> None:
            for _ in range(500):  # bounded; cancelled when the traffic is measured
                guess = secrets.token_hex(16)
                await refused(
                    "heartbeat",
                    stub.Heartbeat(
                        registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=guess), timeout=T
                    ),
                )
                await refused(
                    "deregister",
                    stub.Deregister(
                        registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=guess), timeout=T
                    ),
                )
                # No lease at all, every few milliseconds (it made 97 % of calls fail).
                await refused(
                    "no lease",
                    stub.Register(
                        register_request("echo-1", rogue_address, services=(ECHO,)), timeout=T
                    ),
                )
                # A rogue answering Identify at its own address, with its own secret.
                await refused(
                    "rogue proof",
                    stub.Register(
                        register_request(
                            "echo-1", rogue_address, services=(ECHO,), instance_secret=secret
                        ),
                        timeout=T,
                    ),
                )
                await asyncio.sleep(0.01)

        attacking = asyncio.create_task(attack())
        try:
            traffic = await echo_traffic(bus.grpc)
        finally:
            await until_done(attacking)
            await rogue.stop(None)

    assert traffic.success >= 0.99, traffic.failed[:5]
    assert traffic.nodes == {"echo-1", "echo-2"}  # never the rogue
    assert {r.split(":")[0] for r in refusals["heartbeat"]} == {"NOT_FOUND"}
    assert {r.split(":")[0] for r in refusals["deregister"]} == {"NOT_FOUND"}
    assert refusals["no lease"] == {
        "ALREADY_EXISTS: node_id: 'echo-1' is held by the live instance at "
        f"{_address_of(await list_nodes(bus.grpc), 'echo-1')}; register again with its "
        "lease_id, or with an instance_secret proving you answer there now"
    }
    [rogue_refusal] = refusals["rogue proof"]
    assert rogue_refusal.startswith("ALREADY_EXISTS: node_id: 'echo-1' is held by the live")
    nodes = {n.node_id: n for n in await list_nodes(bus.grpc)}
    assert nodes["echo-1"].address != rogue_address and nodes["echo-1"].health == 1


def _address_of(nodes: list[registry_pb2.Node], node_id: str) -> str:
    return next(n.address for n in nodes if n.node_id == node_id)


async def test_a_killed_node_restarting_under_its_id_gets_back_in_at_once(
    bus, node_factory
) -> None:
    # A 30 s lease: waiting it out would fail the bound below.
    first = node_factory("echo", bus=bus, node_id="echo-1", lease_ttl="30s")
    node_factory("echo", bus=bus, node_id="echo-2")
    await wait_up(bus.grpc, {"echo-1", "echo-2"})
    old = _address_of(await list_nodes(bus.grpc), "echo-1")
    first.kill()
    started = time.monotonic()
    # (Its handle may read the killed process's state file, so the listing is the proof.)
    node_factory("echo", bus=bus, node_id="echo-1", lease_ttl="30s")
    while _address_of(await list_nodes(bus.grpc), "echo-1") == old:
        assert time.monotonic() - started < 15, "the restarted node did not get its id back"
        await asyncio.sleep(0.05)
    took = time.monotonic() - started
    traffic = await echo_traffic(bus.grpc, calls=100, pace_s=0.0)
    assert traffic.success >= 0.99, traffic.failed[:5]
    assert traffic.nodes == {"echo-1", "echo-2"}
    print(f"restarted echo-1 registered again {took:.2f} s after the kill (lease 30 s)")


async def test_addresses_outside_the_allowed_networks_are_refused(bus) -> None:
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        for address, rule in (
            ("169.254.169.254:80", "169.254.0.0/16, which the bus refuses"),
            ("[fe80::1]:80", "fe80::/10, which the bus refuses"),
            ("[fd00:ec2::254]:80", "fd00:ec2::254/128, which the bus refuses"),
            ("8.8.8.8:53", "in none of the allowed networks (127.0.0.0/8, ::1/128, 10.0.0.0/8"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Register(register_request("rogue-1", address), timeout=T)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, address
            host = address.rpartition(":")[0].strip("[]")
            assert caught.value.details().startswith(f"address: {host} may not be registered")
            assert rule in caught.value.details()
        # Private ranges are allowed by default (nodes of one site); a holder may leave.
        lease = await stub.Register(register_request("client-1", "10.1.2.3:443"), timeout=T)
        await stub.Deregister(
            registry_pb2.DeregisterRequest(node_id="client-1", lease_id=lease.lease_id), timeout=T
        )


async def test_loopback_only_bus_refuses_private_addresses(bus_factory) -> None:
    bus = bus_factory(allowed_networks="127.0.0.0/8,::1/128")
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Register(register_request("rogue-1", "10.1.2.3:443"), timeout=T)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "address: 10.1.2.3 may not be registered: is in none of the allowed networks "
        "(127.0.0.0/8, ::1/128)"
    )


async def test_a_registration_flood_is_refused_per_peer(bus_factory, node_factory) -> None:
    bus = bus_factory(register_rate=5, register_burst=20)
    node_factory("echo", bus=bus, node_id="echo-1")
    node_factory("echo", bus=bus, node_id="echo-2")
    await wait_up(bus.grpc, {"echo-1", "echo-2"})
    codes: dict[str, int] = {}
    details: set[str] = set()

    async def flood() -> None:
        async with grpc.aio.insecure_channel(bus.grpc) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)

            async def one(index: int) -> None:
                request = register_request(f"flood-{index}", "127.0.0.1:9")
                try:
                    await stub.Register(request, timeout=T)
                    code = "OK"
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                    details.add(exc.details() or "")
                codes[code] = codes.get(code, 0) + 1

            for batch in range(20):  # 2,000 registrations, 100 at a time
                await asyncio.gather(*(one(batch * 100 + i) for i in range(100)))

    started = time.monotonic()
    flooding = asyncio.create_task(flood())
    try:
        traffic = await echo_traffic(bus.grpc)
        await asyncio.wait_for(asyncio.shield(flooding), 60)
    finally:
        await until_done(flooding)
    elapsed = time.monotonic() - started
    assert traffic.success >= 0.99, traffic.failed[:5]
    assert sum(codes.values()) == 2000
    assert codes.get("OK", 0) <= 20 + 5 * elapsed + 5, (codes, elapsed)
    assert codes["RESOURCE_EXHAUSTED"] >= 2000 - 20 - 5 * elapsed - 5
    assert details == {
        "registrations from 127.0.0.1: more than the limit of 20 at once, then 5/s; retry later"
    }
    listed = await list_nodes(bus.grpc)
    assert len(listed) == 2 + codes.get("OK", 0)
