"""Schema poisoning, with real processes: a bus, two echo nodes and an attacker registering
descriptor sets that redefine what others serve. Each is refused naming the declaration;
Echo calls keep succeeding throughout, and after a node with a compatible addition left."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import descriptor_pb2
from security_support import (
    ECHO,
    T,
    descriptor_set,
    echo_files,
    echo_traffic,
    list_nodes,
    register_request,
    wait_up,
)

from powerbus.bus.kernel.descriptors import MethodKind, descriptor_set_for
from powerbus.bus.kernel.nodes import EPOCH, NodeHealth, NodeRecord
from powerbus.bus.registry import Directory
from powerbus.bus.registry._store import Delta, StoredNode
from powerbus.bus.schema import SchemaRegistry
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

pytestmark = pytest.mark.timeout(90)

ECHO_FILE = "powerbus/echo/v1/echo.proto"


def _echo_variant(name: str = ECHO_FILE) -> list[descriptor_pb2.FileDescriptorProto]:
    files = echo_files()
    echo = next(f for f in files if f.name == ECHO_FILE)
    echo.name = name
    return files


def _method(files: list[descriptor_pb2.FileDescriptorProto], name: str):  # type: ignore[no-untyped-def]
    echo = next(f for f in files if f.service)
    return next(m for m in echo.service[0].method if m.name == name)


def _evil_file() -> list[descriptor_pb2.FileDescriptorProto]:
    """The issue's attack: aaa/evil.proto declaring powerbus.echo.v1.Echo client-streaming."""
    files = _echo_variant("aaa/evil.proto")
    _method(files, "Echo").client_streaming = True
    return files


async def _refusal(stub, request) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Register(request, timeout=T)
    return caught.value.code().name, caught.value.details() or ""


async def test_descriptor_sets_that_redefine_a_service_are_refused(bus, node_factory) -> None:
    node_factory("echo", bus=bus, node_id="echo-1")
    node_factory("echo", bus=bus, node_id="echo-2")
    await wait_up(bus.grpc, {"echo-1", "echo-2"})
    echo_1 = next(n for n in await list_nodes(bus.grpc) if n.node_id == "echo-1")
    before = await echo_traffic(bus.grpc, calls=50, pace_s=0.0)

    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)

        # A node serving nothing redefines Echo in another file.
        code, details = await _refusal(
            stub,
            register_request(
                "evil-1", "127.0.0.1:9", file_descriptor_set=descriptor_set(_evil_file())
            ),
        )
        assert code == "INVALID_ARGUMENT"
        assert details == (
            "file_descriptor_set: aaa/evil.proto defines message powerbus.echo.v1.EchoRequest, "
            "which file powerbus/echo/v1/echo.proto already defines"
        )

        # The same file name, Echo turned client-streaming, registered as an Echo node.
        files = _echo_variant()
        _method(files, "Echo").client_streaming = True
        code, details = await _refusal(
            stub,
            register_request(
                "evil-2",
                echo_1.address,
                services=(ECHO,),
                file_descriptor_set=descriptor_set(files),
            ),
        )
        assert code == "INVALID_ARGUMENT"
        assert details.startswith(
            "file_descriptor_set: powerbus/echo/v1/echo.proto conflicts with the accepted "
            "schema: rpc Echo of service powerbus.echo.v1.Echo became client-streaming"
        )
        assert details.endswith("(RPC_SAME_CLIENT_STREAMING, powerbus.echo.v1.Echo.Echo)")

        # A field renumbered in a message Echo uses.
        files = _echo_variant()
        echo_file = next(f for f in files if f.name == ECHO_FILE)
        request_type = next(m for m in echo_file.message_type if m.name == "EchoRequest")
        request_type.field[0].number = 99
        code, details = await _refusal(
            stub,
            register_request(
                "evil-3",
                echo_1.address,
                services=(ECHO,),
                file_descriptor_set=descriptor_set(files),
            ),
        )
        assert (code, "FIELD_SAME_NUMBER" in details) == ("INVALID_ARGUMENT", True), details
        assert "powerbus.echo.v1.EchoRequest.message" in details

        # The bus's own services can never be served or redefined by a node.
        code, details = await _refusal(
            stub,
            registry_pb2.RegisterRequest(
                node_id="evil-4",
                address="127.0.0.1:9",
                services=["powerbus.registry.v1.Registry"],
                file_descriptor_set=descriptor_set(_registry_files()),
            ),
        )
        assert (code, details) == (
            "PERMISSION_DENIED",
            "services[0]: powerbus.registry.v1.Registry is a service of the bus itself; "
            "no node may serve or redefine it",
        )
        files = _registry_files()
        next(f for f in files if f.name.startswith("powerbus/")).name = "aaa/registry.proto"
        code, details = await _refusal(
            stub,
            register_request("evil-5", "127.0.0.1:9", file_descriptor_set=descriptor_set(files)),
        )
        assert code == "INVALID_ARGUMENT"
        assert "which the bus's own file powerbus/registry/v1/registry.proto already" in details

        # A compatible addition (a new rpc and a new field) is accepted ...
        files = _echo_variant()
        echo_file = next(f for f in files if f.name == ECHO_FILE)
        echo_file.service[0].method.add().CopyFrom(_method(files, "Echo"))
        echo_file.service[0].method[-1].name = "EchoAgain"
        request_type = next(m for m in echo_file.message_type if m.name == "EchoRequest")
        request_type.field.add(name="extra", number=50, type=9, label=1, json_name="extra")
        lease = await stub.Register(
            register_request(
                "echo-3",
                echo_1.address,
                services=(ECHO,),
                file_descriptor_set=descriptor_set(files),
            ),
            timeout=T,
        )
        during = await echo_traffic(bus.grpc, calls=100, pace_s=0.0)
        # ... and its leaving leaves the remaining nodes' schema, which still works.
        await stub.Deregister(
            registry_pb2.DeregisterRequest(node_id="echo-3", lease_id=lease.lease_id), timeout=T
        )
    after = await echo_traffic(bus.grpc, calls=150, pace_s=0.0)
    for traffic in (before, during, after):
        assert traffic.success >= 0.99, traffic.failed[:5]
    assert after.nodes == {"echo-1", "echo-2"}
    nodes = {n.node_id for n in await list_nodes(bus.grpc) if n.health == 1}
    assert nodes == {"echo-1", "echo-2"}


def _registry_files() -> list[descriptor_pb2.FileDescriptorProto]:
    return list(descriptor_set_for(registry_pb2.DESCRIPTOR).file)


def _stored(node_id: str, services: tuple[str, ...], files, *, at: int, health, revision: int):  # type: ignore[no-untyped-def]
    moment = EPOCH + timedelta(seconds=at)
    record = NodeRecord(
        node_id=node_id,
        kind="echo",
        address="127.0.0.1:9",
        services=services,
        health=health,
        registered_at=moment,
        last_heartbeat_at=moment,
        lease_expires_at=moment + timedelta(seconds=10),
        lease_id=node_id,
        down_since=None if health is NodeHealth.UP else moment + timedelta(seconds=1),
    )
    return StoredNode(record, revision, tuple(files))


def test_a_poisoned_file_never_shadows_the_serving_nodes_schema() -> None:
    """The issue's state (a rogue's aaa/evil.proto, registered before the check existed or
    through a race): the schema takes Echo from the node that serves it, while the rogue is
    live and after it left, whatever the file names sort as."""
    directory, schema = Directory(), SchemaRegistry()
    evil = _stored("evil-1", (), _evil_file(), at=1, health=NodeHealth.UP, revision=1)
    echo = _stored("echo-1", (ECHO,), echo_files(), at=2, health=NodeHealth.UP, revision=2)
    directory._apply(Delta(2, (evil, echo), (), full=True))
    for step in ("rogue live", "rogue left"):
        schema.rebuild(directory.file_descriptors())
        method = schema.method("/powerbus.echo.v1.Echo/Echo")
        assert method is not None and method.kind is MethodKind.UNARY, step
        gone = _stored("evil-1", (), _evil_file(), at=1, health=NodeHealth.DOWN, revision=3)
        directory._apply(Delta(3, (gone,), (), full=False))
