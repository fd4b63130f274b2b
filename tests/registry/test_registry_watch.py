"""Watch: the snapshot, SYNCED, live changes, filters, and how streams end."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from powerbus.registry.v1 import registry_pb2

ECHO = "powerbus.echo.v1.Echo"
REGISTRY = "powerbus.registry.v1.Registry"
T = 5.0
Event = registry_pb2.WatchEvent


async def _read(call) -> Event:
    event = await asyncio.wait_for(call.read(), T)
    assert event is not grpc.aio.EOF, "the stream ended"
    return event


def _brief(event: Event) -> tuple[str, str]:
    return Event.Kind.Name(event.kind), event.node.node_id


async def test_snapshot_synced_then_changes(stub, request_for) -> None:
    first = await stub.Register(request_for("echo-1", "127.0.0.1:7001"), timeout=T)
    await stub.Register(request_for("echo-0", "127.0.0.1:7000"), timeout=T)
    call = stub.Watch(registry_pb2.WatchRequest(), timeout=T)

    snapshot = [await _read(call), await _read(call)]
    assert sorted(_brief(e) for e in snapshot) == [
        ("KIND_EXISTING", "echo-0"),
        ("KIND_EXISTING", "echo-1"),
    ]
    synced = await _read(call)
    assert synced.kind == Event.KIND_SYNCED and not synced.HasField("node")
    assert synced.revision == snapshot[0].revision == 2

    echo2 = await stub.Register(request_for("echo-2", "127.0.0.1:7002"), timeout=T)
    added = await _read(call)
    assert _brief(added) == ("KIND_ADDED", "echo-2")
    assert added.revision == 3

    again = request_for("echo-2", "127.0.0.1:7002", weight=5, lease_id=echo2.lease_id)
    await stub.Register(again, timeout=T)
    updated = await _read(call)
    assert _brief(updated) == ("KIND_UPDATED", "echo-2")
    assert updated.node.weight == 5

    await stub.Deregister(
        registry_pb2.DeregisterRequest(node_id="echo-1", lease_id=first.lease_id), timeout=T
    )
    removed = await _read(call)
    assert _brief(removed) == ("KIND_REMOVED", "echo-1")
    assert removed.node.health == registry_pb2.NODE_HEALTH_DOWN
    assert removed.revision == 5

    # Coming back after going down is an addition again.
    await stub.Register(request_for("echo-1", "127.0.0.1:7001"), timeout=T)
    assert _brief(await _read(call)) == ("KIND_ADDED", "echo-1")
    call.cancel()


async def test_filter_by_service(stub, request_for) -> None:
    echo1 = await stub.Register(request_for("echo-1", services=[ECHO]), timeout=T)
    both1 = await stub.Register(
        request_for("both-1", "127.0.0.1:7010", services=[ECHO, REGISTRY]), timeout=T
    )
    call = stub.Watch(registry_pb2.WatchRequest(services=[REGISTRY]), timeout=T)
    assert _brief(await _read(call)) == ("KIND_EXISTING", "both-1")
    assert (await _read(call)).kind == Event.KIND_SYNCED

    await stub.Register(request_for("echo-2", "127.0.0.1:7002", services=[ECHO]), timeout=T)
    # echo-1 starts serving the watched service: it enters the watch.
    await stub.Register(
        request_for("echo-1", services=[ECHO, REGISTRY], lease_id=echo1.lease_id), timeout=T
    )
    assert _brief(await _read(call)) == ("KIND_ADDED", "echo-1")
    # both-1 stops serving it: it leaves.
    await stub.Register(
        request_for("both-1", "127.0.0.1:7010", services=[ECHO], lease_id=both1.lease_id),
        timeout=T,
    )
    assert _brief(await _read(call)) == ("KIND_REMOVED", "both-1")
    call.cancel()


async def test_registry_stop_ends_streams_cleanly(stub, registry, request_for) -> None:
    await stub.Register(request_for(), timeout=T)
    call = stub.Watch(registry_pb2.WatchRequest(), timeout=T)
    assert (await _read(call)).kind == Event.KIND_EXISTING
    assert (await _read(call)).kind == Event.KIND_SYNCED
    await registry.stop()
    assert await asyncio.wait_for(call.read(), T) is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_end_watches_ends_streams_but_not_the_registry(stub, registry, request_for) -> None:
    call = stub.Watch(registry_pb2.WatchRequest(), timeout=T)
    assert (await _read(call)).kind == Event.KIND_SYNCED
    registry.end_watches()
    assert await asyncio.wait_for(call.read(), T) is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    await stub.Register(request_for(), timeout=T)
    again = stub.Watch(registry_pb2.WatchRequest(), timeout=T)
    assert _brief(await _read(again)) == ("KIND_EXISTING", "echo-1")
    again.cancel()


async def test_client_cancel_unsubscribes(stub, registry, request_for, eventually) -> None:
    call = stub.Watch(registry_pb2.WatchRequest(), timeout=T)
    assert (await _read(call)).kind == Event.KIND_SYNCED
    assert len(registry._watches) == 1
    call.cancel()
    await eventually(lambda: not registry._watches, what="the watch to be dropped")
    # Changes after the cancel reach nobody and break nothing.
    await stub.Register(request_for(), timeout=T)


async def test_slow_watcher_is_cut_off_not_waited_for(registry_factory, serve, request_for) -> None:
    # The served instance never polls on its own, so the other instance's registrations
    # arrive in one batch when its own next write makes it catch up.
    quiet = await registry_factory(watch_backlog=2, sweep_interval=timedelta(minutes=10))
    other = await registry_factory()
    quiet_stub, other_stub = await serve(quiet), await serve(other)
    call = quiet_stub.Watch(registry_pb2.WatchRequest(), timeout=T)
    assert (await _read(call)).kind == Event.KIND_SYNCED

    for i in range(5):
        await other_stub.Register(request_for(f"echo-{i}", f"127.0.0.1:{7100 + i}"), timeout=T)
    await quiet_stub.Register(request_for("echo-x", "127.0.0.1:7200"), timeout=T)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        for _ in range(10):
            await _read(call)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "watch again" in caught.value.details()
    # The registry itself carried on.
    assert quiet.directory.revision == 6
    assert not quiet._watches
