"""The directory as the router reads it: services, descriptors, listeners, public API."""

from __future__ import annotations

import logging
from dataclasses import FrozenInstanceError

import pytest
from google.protobuf import descriptor_pb2

import powerbus.bus.registry as registry_package
from powerbus.bus.registry import ChangeKind, DirectoryChange, NodeHealth, Priority
from powerbus.registry.v1 import registry_pb2

ECHO = "powerbus.echo.v1.Echo"
T = 5.0


def _demo_file(comment_field: str) -> bytes:
    """demo/a.proto serving demo.A; ``comment_field`` makes versions differ."""
    file = descriptor_pb2.FileDescriptorProto(name="demo/a.proto", package="demo", syntax="proto3")
    message = file.message_type.add(name="M")
    message.field.add(name=comment_field, number=1, type=9, label=1)
    service = file.service.add(name="A")
    service.method.add(name="Call", input_type=".demo.M", output_type=".demo.M")
    return descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString()


def _field_of(registry) -> str:
    [file] = [f for f in registry.directory.file_descriptors() if f.name == "demo/a.proto"]
    return file.message_type[0].field[0].name


async def test_newest_live_registration_describes_a_shared_file(stub, registry, request_for):
    old = request_for(
        "a-1", "127.0.0.1:7001", services=["demo.A"], file_descriptor_set=_demo_file("v1")
    )
    new = request_for(
        "a-2", "127.0.0.1:7002", services=["demo.A"], file_descriptor_set=_demo_file("v2")
    )
    await stub.Register(old, timeout=T)
    assert _field_of(registry) == "v1"
    lease = await stub.Register(new, timeout=T)
    assert _field_of(registry) == "v2"
    await stub.Deregister(
        registry_pb2.DeregisterRequest(node_id="a-2", lease_id=lease.lease_id), timeout=T
    )
    assert _field_of(registry) == "v1"  # the live node's version wins over a down one
    names = [f.name for f in registry.directory.file_descriptors()]
    assert len(names) == len(set(names))


async def test_service_entry_and_nodes(stub, registry, request_for) -> None:
    await stub.Register(request_for("echo-2", "127.0.0.1:7002"), timeout=T)
    await stub.Register(
        request_for("echo-1", priority=registry_pb2.PRIORITY_STANDBY, metadata={"a": "b"}),
        timeout=T,
    )
    lease = await stub.Register(request_for("echo-3", "127.0.0.1:7003"), timeout=T)
    await stub.Deregister(
        registry_pb2.DeregisterRequest(node_id="echo-3", lease_id=lease.lease_id), timeout=T
    )
    entry = registry.directory.service(ECHO)
    assert entry is not None
    assert [n.node_id for n in entry.nodes] == ["echo-1", "echo-2", "echo-3"]
    assert [n.node_id for n in entry.healthy] == ["echo-1", "echo-2"]
    assert [n.node_id for n in registry.directory.nodes()] == ["echo-1", "echo-2"]
    assert len(registry.directory.nodes(include_down=True)) == 3
    assert registry.directory.nodes(service="no.Such") == []
    assert registry.directory.service("no.Such") is None

    node = entry.nodes[0]
    assert node.priority is Priority.STANDBY and node.health is NodeHealth.UP
    assert dict(node.metadata) == {"a": "b"}
    assert node.registered_at.tzinfo is not None
    with pytest.raises(FrozenInstanceError):
        node.weight = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        node.metadata["a"] = "c"  # type: ignore[index]
    assert node.to_proto().metadata["a"] == "b"


async def test_heartbeats_are_not_changes(stub, registry, request_for) -> None:
    lease = await stub.Register(request_for(), timeout=T)
    changes: list[DirectoryChange] = []
    registry.directory.add_listener(changes.append)
    beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id)
    for _ in range(3):
        await stub.Heartbeat(beat, timeout=T)
    # The next write brings the directory up to date with everything before it.
    await stub.Register(request_for("echo-2", "127.0.0.1:7002"), timeout=T)
    assert registry.directory.revision == 2
    assert [(c.kind, c.node.node_id) for c in changes] == [(ChangeKind.ADDED, "echo-2")]


async def test_a_failing_listener_does_not_stop_the_others(stub, registry, request_for, caplog):
    def broken(change: DirectoryChange) -> None:
        raise RuntimeError("listener bug")

    seen: list[DirectoryChange] = []
    registry.directory.add_listener(broken)
    unsubscribe = registry.directory.add_listener(seen.append)
    with caplog.at_level(logging.ERROR):
        await stub.Register(request_for(), timeout=T)
    assert [c.kind for c in seen] == [ChangeKind.ADDED]
    assert "listener" in caplog.text
    unsubscribe()
    unsubscribe()  # idempotent
    await stub.Register(request_for("echo-2", "127.0.0.1:7002"), timeout=T)
    assert len(seen) == 1


def test_public_api_is_pinned() -> None:
    assert registry_package.__all__ == sorted(registry_package.__all__)
    assert set(registry_package.__all__) == {
        "ChangeKind",
        "Dependency",
        "Directory",
        "DirectoryChange",
        "Listener",
        "Load",
        "NetworkRules",
        "NodeHealth",
        "NodeRecord",
        "Priority",
        "Registry",
        "ServiceEntry",
        "WatchFellBehind",
    }
