"""Register, list, heartbeat, deregister and re-register, through a real gRPC server."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from powerbus.bus.registry import NodeHealth, Registry
from powerbus.registry.v1 import registry_pb2

ECHO = "powerbus.echo.v1.Echo"
T = 5.0


async def test_register_then_list(stub, registry: Registry, request_for) -> None:
    request = request_for(
        weight=7,
        zone="z1",
        priority=registry_pb2.PRIORITY_STANDBY,
        dependencies=[registry_pb2.Dependency(service="powerbus.billing.v1.Billing")],
        metadata={"version": "1.2"},
    )
    response = await stub.Register(request, timeout=T)
    assert response.lease_id
    assert response.lease_ttl.ToTimedelta() == timedelta(seconds=10)
    assert response.heartbeat_interval.ToTimedelta() == timedelta(seconds=10) / 3

    listed = await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)
    [node] = listed.nodes
    assert (node.node_id, node.kind, node.address) == ("echo-1", "echo", "127.0.0.1:7001")
    assert list(node.services) == [ECHO]
    assert (node.weight, node.zone, node.priority) == (7, "z1", registry_pb2.PRIORITY_STANDBY)
    assert node.dependencies[0].service == "powerbus.billing.v1.Billing"
    assert not node.dependencies[0].required
    assert dict(node.metadata) == {"version": "1.2"}
    assert node.health == registry_pb2.NODE_HEALTH_UP
    assert node.lease_id == ""  # only its holder learns the lease, from RegisterResponse

    # The instance that took the registration routes to it before answering.
    entry = registry.directory.service(ECHO)
    assert entry is not None
    assert [n.node_id for n in entry.healthy] == ["echo-1"]
    assert registry.directory.services() == [ECHO]


async def test_defaults_and_filters(stub, request_for) -> None:
    await stub.Register(request_for(), timeout=T)
    await stub.Register(request_for("client-1", "127.0.0.1:7002", services=[]), timeout=T)

    nodes = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes
    by_id = {n.node_id: n for n in nodes}
    assert by_id["echo-1"].weight == 100
    assert by_id["echo-1"].priority == registry_pb2.PRIORITY_PRIMARY
    assert list(by_id["client-1"].services) == []

    echo_only = await stub.ListNodes(registry_pb2.ListNodesRequest(service=ECHO), timeout=T)
    assert [n.node_id for n in echo_only.nodes] == ["echo-1"]


async def test_heartbeat_renews_and_stores_load(stub, request_for) -> None:
    lease = await stub.Register(request_for(), timeout=T)
    first = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes[0]
    load = registry_pb2.Load(in_flight=3, cpu=0.25, requests_total=40, errors_total=2)
    beat = await stub.Heartbeat(
        registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id, load=load),
        timeout=T,
    )
    assert beat.lease_expires_at.ToDatetime() >= first.lease_expires_at.ToDatetime()

    node = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes[0]
    assert node.load == load
    assert node.lease_expires_at == beat.lease_expires_at


async def test_heartbeat_with_an_unknown_lease_is_not_found(stub, request_for) -> None:
    await stub.Register(request_for(), timeout=T)
    for node_id, lease_id in [("echo-1", "nope"), ("ghost", "nope")]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Heartbeat(
                registry_pb2.HeartbeatRequest(node_id=node_id, lease_id=lease_id), timeout=T
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "register again" in caught.value.details()


async def test_deregister_marks_down_at_once(stub, registry: Registry, request_for) -> None:
    lease = await stub.Register(request_for(), timeout=T)
    request = registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=lease.lease_id)
    await stub.Deregister(request, timeout=T)
    await stub.Deregister(request, timeout=T)  # idempotent

    assert (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes == []
    listed = await stub.ListNodes(registry_pb2.ListNodesRequest(include_down=True), timeout=T)
    assert [n.health for n in listed.nodes] == [registry_pb2.NODE_HEALTH_DOWN]

    entry = registry.directory.service(ECHO)
    assert entry is not None and entry.healthy == ()
    assert [n.health for n in entry.nodes] == [NodeHealth.DOWN]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id)
        await stub.Heartbeat(beat, timeout=T)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_deregister_with_a_stale_lease_leaves_the_node_up(stub, request_for) -> None:
    old = await stub.Register(request_for(), timeout=T)
    await stub.Register(request_for(lease_id=old.lease_id), timeout=T)  # the holder: new lease
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Deregister(
            registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=old.lease_id), timeout=T
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("lease_id:")
    nodes = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes
    assert [n.health for n in nodes] == [registry_pb2.NODE_HEALTH_UP]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Deregister(
            registry_pb2.DeregisterRequest(node_id="ghost", lease_id="x"), timeout=T
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("node_id:")


async def test_reregister_same_address_replaces_the_lease(stub, request_for) -> None:
    first = await stub.Register(request_for(weight=1), timeout=T)
    second = await stub.Register(request_for(weight=2, lease_id=first.lease_id), timeout=T)
    assert first.lease_id != second.lease_id

    [node] = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes
    assert node.weight == 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=first.lease_id)
        await stub.Heartbeat(beat, timeout=T)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=second.lease_id)
    await stub.Heartbeat(beat, timeout=T)


async def test_live_id_at_another_address_is_refused(stub, request_for) -> None:
    await stub.Register(request_for(address="127.0.0.1:7001"), timeout=T)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Register(request_for(address="127.0.0.1:7999"), timeout=T)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert caught.value.details().startswith(
        "node_id: 'echo-1' is held by the live instance at 127.0.0.1:7001; register again"
    )


async def test_a_down_id_may_move(stub, request_for) -> None:
    lease = await stub.Register(request_for(address="127.0.0.1:7001"), timeout=T)
    await stub.Deregister(
        registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=lease.lease_id), timeout=T
    )
    await stub.Register(request_for(address="127.0.0.1:7999"), timeout=T)
    [node] = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes
    assert (node.address, node.health) == ("127.0.0.1:7999", registry_pb2.NODE_HEALTH_UP)


async def test_requested_lease_is_bounded(stub, request_for) -> None:
    cases = [(0.2, 1.0), (30.0, 30.0), (10_000.0, 300.0), (315_576_000_000, 300.0)]
    lease = ""
    for asked, granted in cases:
        request = request_for(lease_id=lease)
        request.lease_ttl.seconds = int(asked)
        request.lease_ttl.nanos = round((asked % 1) * 1e9)
        response = await stub.Register(request, timeout=T)
        lease = response.lease_id
        assert response.lease_ttl.ToTimedelta() == timedelta(seconds=granted), asked
        assert response.heartbeat_interval.ToTimedelta() == timedelta(seconds=granted) / 3


async def test_calls_to_a_stopped_registry_are_unavailable(
    stub, registry: Registry, request_for
) -> None:
    await registry.stop()
    await registry.stop()  # idempotent
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Register(request_for(), timeout=T)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
