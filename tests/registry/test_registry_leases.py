"""Leases lapse, the sweeper marks the node down, and down nodes are purged in time."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import grpc
import pytest

from powerbus.bus.registry import ChangeKind, DirectoryChange, NodeHealth
from powerbus.registry.v1 import registry_pb2

ECHO = "powerbus.echo.v1.Echo"
T = 5.0


async def test_lapsed_lease_marks_down_and_late_heartbeat_is_not_found(
    registry_factory, serve, request_for, eventually
) -> None:
    registry = await registry_factory(
        lease_ttl=timedelta(milliseconds=500), sweep_interval=timedelta(milliseconds=50)
    )
    stub = await serve(registry)
    lease = await stub.Register(request_for(), timeout=T)
    assert lease.lease_ttl.ToTimedelta() == timedelta(milliseconds=500)
    changes: list[DirectoryChange] = []
    registry.directory.add_listener(changes.append)

    def down() -> bool:
        node = registry.directory.node("echo-1")
        return node is not None and node.health is NodeHealth.DOWN

    await eventually(down, what="the sweeper to mark echo-1 down")
    assert [(c.kind, c.node.health) for c in changes] == [(ChangeKind.UPDATED, NodeHealth.DOWN)]
    assert changes[0].previous is not None and changes[0].previous.health is NodeHealth.UP
    entry = registry.directory.service(ECHO)
    assert entry is not None and entry.healthy == ()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id)
        await stub.Heartbeat(beat, timeout=T)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_heartbeats_keep_a_short_lease_alive(
    registry_factory, serve, request_for, eventually
) -> None:
    registry = await registry_factory(
        lease_ttl=timedelta(milliseconds=500), sweep_interval=timedelta(milliseconds=50)
    )
    stub = await serve(registry)
    lease = await stub.Register(request_for(), timeout=T)
    beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id)
    interval = lease.heartbeat_interval.ToTimedelta().total_seconds()
    for _ in range(9):  # three leases' worth, paced like a node's heartbeat timer
        await stub.Heartbeat(beat, timeout=T)
        await asyncio.sleep(interval)
    node = registry.directory.node("echo-1")
    assert node is not None and node.health is NodeHealth.UP


async def test_down_nodes_are_purged_after_retention(
    registry_factory, serve, request_for, eventually
) -> None:
    registry = await registry_factory(down_retention=timedelta(milliseconds=300))
    stub = await serve(registry)
    lease = await stub.Register(request_for(), timeout=T)
    changes: list[DirectoryChange] = []
    registry.directory.add_listener(changes.append)
    await stub.Deregister(
        registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=lease.lease_id), timeout=T
    )
    await eventually(lambda: registry.directory.node("echo-1") is None, what="the purge")
    assert [c.kind for c in changes] == [ChangeKind.UPDATED, ChangeKind.REMOVED]
    assert registry.directory.service(ECHO) is None
    assert registry.directory.services() == []
    listed = await stub.ListNodes(registry_pb2.ListNodesRequest(include_down=True), timeout=T)
    assert listed.nodes == []


async def test_unexpected_failure_is_internal_without_traceback(
    registry_factory, serve, request_for, caplog
) -> None:
    # A clock without a time zone is a programming error the registry does not map.
    registry = await registry_factory(clock=datetime.now)
    stub = await serve(registry)
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Register(request_for(), timeout=T)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error in the registry's Register"
    assert any("naive datetime" in r.getMessage() or r.exc_info for r in caplog.records)
    # The servicer is still there for the next call.
    listed = await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)
    assert listed.nodes == []
