"""Several bus instances on one registry database (the multi-bus case)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import grpc

from powerbus.bus.registry import ChangeKind, DirectoryChange, NodeHealth
from powerbus.registry.v1 import registry_pb2

ECHO = "powerbus.echo.v1.Echo"
T = 5.0


async def test_each_instance_sees_the_others_registrations(
    registry_factory, serve, request_for, eventually
) -> None:
    a, b = await registry_factory(), await registry_factory()
    stub_a, stub_b = await serve(a), await serve(b)
    seen_by_b: list[DirectoryChange] = []
    b.directory.add_listener(seen_by_b.append)

    lease = await stub_a.Register(request_for(), timeout=T)
    await eventually(lambda: b.directory.service(ECHO) is not None, what="b to see echo-1")
    entry = b.directory.service(ECHO)
    assert entry is not None
    assert [n.node_id for n in entry.healthy] == ["echo-1"]
    assert [(c.kind, c.revision) for c in seen_by_b] == [(ChangeKind.ADDED, 1)]
    assert b.directory.revision == a.directory.revision == 1
    assert b.directory.file_descriptors() == a.directory.file_descriptors()
    assert {f.name for f in b.directory.file_descriptors()} >= {"powerbus/echo/v1/echo.proto"}

    # A lease granted by one instance is renewed and ended through another.
    beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id)
    await stub_b.Heartbeat(beat, timeout=T)
    listed = await stub_b.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)
    assert [n.node_id for n in listed.nodes] == ["echo-1"]
    await stub_b.Deregister(
        registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=lease.lease_id), timeout=T
    )

    def down_in_a() -> bool:
        node = a.directory.node("echo-1")
        return node is not None and node.health is NodeHealth.DOWN

    await eventually(down_in_a, what="a to see echo-1 deregistered through b")


async def test_one_instance_expires_for_all(
    registry_factory, serve, request_for, eventually
) -> None:
    # a's clock lags an hour, so its own sweeper never finds a lapsed lease: only b's can.
    lagging = await registry_factory(clock=lambda: datetime.now(timezone.utc) - timedelta(hours=1))
    sweeping = await registry_factory(lease_ttl=timedelta(milliseconds=500))
    await (await serve(sweeping)).Register(request_for(), timeout=T)
    await eventually(lambda: lagging.directory.node("echo-1") is not None, what="a to see it")

    def down(registry) -> bool:
        node = registry.directory.node("echo-1")
        return node is not None and node.health is NodeHealth.DOWN

    await eventually(lambda: down(lagging), what="b's expiry to reach a")
    await eventually(lambda: down(sweeping), what="b's expiry to reach b's own directory")


async def test_racing_sweepers_mark_down_once(
    registry_factory, serve, request_for, eventually
) -> None:
    registries = [await registry_factory(lease_ttl=timedelta(milliseconds=300)) for _ in range(3)]
    changes: list[DirectoryChange] = []
    registries[0].directory.add_listener(changes.append)
    stub = await serve(registries[0])
    for i in range(4):
        await stub.Register(request_for(f"echo-{i}", f"127.0.0.1:{7000 + i}"), timeout=T)
    everyone_down = lambda: all(  # noqa: E731
        len(r.directory.nodes(include_down=True)) == 4 and not r.directory.nodes()
        for r in registries
    )
    await eventually(everyone_down, what="all four nodes down everywhere")
    # Four registrations and four expiries, however many sweepers raced for each.
    await eventually(lambda: all(r.directory.revision == 8 for r in registries), what="rev 8")
    downs = [c for c in changes if c.node.health is NodeHealth.DOWN]
    assert sorted(c.node.node_id for c in downs) == [f"echo-{i}" for i in range(4)]


async def test_concurrent_claims_on_one_id_admit_one(registry_factory, serve, request_for) -> None:
    a, b = await registry_factory(), await registry_factory()
    stub_a, stub_b = await serve(a), await serve(b)
    results = await asyncio.gather(
        stub_a.Register(request_for("echo-1", "127.0.0.1:7001"), timeout=T),
        stub_b.Register(request_for("echo-1", "127.0.0.1:7002"), timeout=T),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 1, results
    assert refused[0].code() == grpc.StatusCode.ALREADY_EXISTS


async def test_purge_by_one_removes_everywhere(
    registry_factory, serve, request_for, eventually
) -> None:
    keeper = await registry_factory(down_retention=timedelta(hours=1))
    await registry_factory(down_retention=timedelta(milliseconds=200))  # purges for both
    stub = await serve(keeper)
    lease = await stub.Register(request_for(), timeout=T)
    removed: list[DirectoryChange] = []
    keeper.directory.add_listener(lambda c: c.kind is ChangeKind.REMOVED and removed.append(c))
    await stub.Deregister(
        registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=lease.lease_id), timeout=T
    )
    await eventually(lambda: keeper.directory.node("echo-1") is None, what="the purge to reach")
    assert [c.node.node_id for c in removed] == ["echo-1"]
    assert keeper.directory.services() == []
