"""Every bad Register field is refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf import descriptor_pb2

from powerbus.echo.v1 import echo_pb2
from powerbus.registry.v1 import registry_pb2

T = 5.0


def _echo_without_imports() -> bytes:
    """The echo file alone: it imports google/protobuf/duration.proto, which is missing."""
    files = descriptor_pb2.FileDescriptorSet()
    echo_pb2.DESCRIPTOR.CopyToProto(files.file.add())
    return files.SerializeToString()


def _unresolved_type() -> bytes:
    file = descriptor_pb2.FileDescriptorProto(name="demo/broken.proto", package="demo")
    message = file.message_type.add(name="M")
    message.field.add(name="x", number=1, type=11, type_name=".demo.Missing", label=1)
    return descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString()


BAD = [
    ({"node_id": ""}, "node_id"),
    ({"node_id": "has space"}, "node_id"),
    ({"node_id": "-lead"}, "node_id"),
    ({"node_id": "x" * 129}, "node_id"),
    ({"address": ""}, "address"),
    ({"address": "localhost"}, "address"),
    ({"address": "127.0.0.1:0"}, "address"),
    ({"address": "127.0.0.1:70000"}, "address"),
    ({"address": "0.0.0.0:7001"}, "address"),
    ({"address": "[::]:7001"}, "address"),
    ({"kind": "bad kind"}, "kind"),
    ({"file_descriptor_set": b"not a descriptor set"}, "file_descriptor_set"),
    ({"file_descriptor_set": _echo_without_imports()}, "file_descriptor_set"),
    ({"file_descriptor_set": _unresolved_type()}, "file_descriptor_set"),
    ({"file_descriptor_set": b""}, "services[0]"),
    ({"services": ["powerbus.echo.v1.Echo", "powerbus.nope.v1.Nope"]}, "services[1]"),
    ({"services": ["powerbus.echo.v1.Echo", "powerbus.echo.v1.Echo"]}, "services[1]"),
    ({"services": ["not a name"]}, "services[0]"),
    ({"weight": 10_001}, "weight"),
    ({"priority": 7}, "priority"),
    ({"dependencies": [registry_pb2.Dependency(service="")]}, "dependencies[0].service"),
    ({"metadata": {"": "x"}}, "metadata"),
    ({"metadata": {"k": "v" * 2000}}, "metadata[k]"),
]


@pytest.mark.parametrize(("fields", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
async def test_bad_register_fields(stub, request_for, fields, field) -> None:
    request = request_for(**fields)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Register(request, timeout=T)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: "), caught.value.details()
    assert "Traceback" not in caught.value.details()


async def test_missing_import_is_named(stub, request_for) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Register(request_for(file_descriptor_set=_echo_without_imports()), timeout=T)
    assert "google/protobuf/duration.proto" in caught.value.details()


async def test_negative_lease_is_refused(stub, request_for) -> None:
    request = request_for()
    request.lease_ttl.seconds = -1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Register(request, timeout=T)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("lease_ttl: ")


async def test_refused_registration_leaves_nothing(stub, registry, request_for) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Register(request_for(address="nowhere"), timeout=T)
    assert (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes == []
    assert registry.directory.revision == 0


async def test_a_pure_client_needs_no_descriptors(stub, request_for) -> None:
    await stub.Register(request_for(services=[], file_descriptor_set=b""), timeout=T)


@pytest.mark.parametrize(
    ("load", "field"),
    [
        (registry_pb2.Load(in_flight=-1), "load.in_flight"),
        (registry_pb2.Load(cpu=-0.5), "load.cpu"),
        (registry_pb2.Load(cpu=math.nan), "load.cpu"),
    ],
)
async def test_bad_heartbeat_load(stub, request_for, load, field) -> None:
    lease = await stub.Register(request_for(), timeout=T)
    request = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id, load=load)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Heartbeat(request, timeout=T)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("request_", "method", "field"),
    [
        (registry_pb2.HeartbeatRequest(lease_id="x"), "Heartbeat", "node_id"),
        (registry_pb2.HeartbeatRequest(node_id="echo-1"), "Heartbeat", "lease_id"),
        (registry_pb2.DeregisterRequest(lease_id="x"), "Deregister", "node_id"),
        (registry_pb2.DeregisterRequest(node_id="echo-1"), "Deregister", "lease_id"),
        (registry_pb2.ListNodesRequest(service="no spaces"), "ListNodes", "service"),
    ],
)
async def test_bad_ids_and_names(stub, request_, method, field) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(request_, timeout=T)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: ")


async def test_bad_watch_filter(stub) -> None:
    call = stub.Watch(registry_pb2.WatchRequest(services=["ok.S", "bad name"]), timeout=T)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _event in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("services[1]: ")
