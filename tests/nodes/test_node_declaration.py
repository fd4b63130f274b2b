"""Declaring nodes: served services from servicer bases, dependencies from BusClient
attributes, the descriptor set registered with them, and the kinds table."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from powerbus.bus.kernel.errors import InvalidArgument, Unavailable
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.echo import EchoNode
from powerbus.nodes.sdk import NODE_KINDS, BusClient, Node, file_descriptor_set, load_kind
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc


class RegistryFront(Node, echo_pb2_grpc.EchoServicer, registry_pb2_grpc.RegistryServicer):
    kind = "front"
    echo = BusClient(echo_pb2_grpc.EchoStub)
    registry = BusClient(registry_pb2_grpc.RegistryStub, required=False)


def test_served_services_come_from_the_generated_servicer_bases():
    assert [s.name for s in EchoNode.served_services()] == ["powerbus.echo.v1.Echo"]
    assert [s.name for s in RegistryFront.served_services()] == [
        "powerbus.echo.v1.Echo",
        "powerbus.registry.v1.Registry",
    ]


def test_dependencies_come_from_bus_client_attributes():
    assert EchoNode.dependencies() == ()
    declared = [(d.service, d.required, d.name) for d in RegistryFront.dependencies()]
    assert declared == [
        ("powerbus.echo.v1.Echo", True, "echo"),
        ("powerbus.registry.v1.Registry", False, "registry"),
    ]
    assert RegistryFront.echo.to_proto() == registry_pb2.Dependency(
        service="powerbus.echo.v1.Echo", required=True
    )


def test_subclasses_inherit_and_extend_declarations():
    class Louder(RegistryFront):
        kind = "louder"
        more = BusClient(echo_pb2_grpc.EchoStub, required=False)  # same service: last wins

    assert [s.name for s in Louder.served_services()] == [
        "powerbus.echo.v1.Echo",
        "powerbus.registry.v1.Registry",
    ]
    assert [(d.service, d.required) for d in Louder.dependencies()] == [
        ("powerbus.echo.v1.Echo", False),
        ("powerbus.registry.v1.Registry", False),
    ]


def test_a_bus_client_needs_a_generated_stub():
    with pytest.raises(TypeError, match="not a generated gRPC stub"):
        BusClient(dict)  # type: ignore[arg-type]


def test_kind_must_be_a_non_empty_string():
    with pytest.raises(TypeError, match="kind must be a non-empty string"):

        class Nameless(Node):
            kind = " "


def test_node_id_and_bus_are_unavailable_until_a_runner_starts_the_node():
    node = EchoNode()
    with pytest.raises(RuntimeError, match="not running"):
        _ = node.node_id
    with pytest.raises(Unavailable):
        _ = node.bus


def test_the_descriptor_set_holds_the_services_and_all_their_imports_in_order():
    services = [s.descriptor for s in RegistryFront.served_services()]
    fds = descriptor_pb2.FileDescriptorSet.FromString(file_descriptor_set(services))
    names = [f.name for f in fds.file]
    assert sorted(names) == [
        "google/protobuf/duration.proto",
        "google/protobuf/timestamp.proto",
        "powerbus/echo/v1/echo.proto",
        "powerbus/registry/v1/registry.proto",
    ]
    for index, file in enumerate(fds.file):  # every import precedes its importer
        assert set(file.dependency) <= set(names[:index])
    echo_file = fds.file[names.index("powerbus/echo/v1/echo.proto")]
    method = echo_file.service[0].method[0]
    assert (method.name, method.options.idempotency_level) == (
        "Echo",
        descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    )


def test_the_descriptor_set_builds_a_working_pool():
    from google.protobuf import descriptor_pool, message_factory

    data = file_descriptor_set([echo_pb2.DESCRIPTOR.services_by_name["Echo"]])
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        pool.Add(file)
    request_type = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("powerbus.echo.v1.EchoRequest")
    )
    decoded = request_type.FromString(echo_pb2.EchoRequest(message="m").SerializeToString())
    assert decoded.message == "m"


def test_the_kinds_table_loads_echo():
    assert load_kind("echo") is EchoNode


def test_every_listed_kind_loads_and_names_itself():
    for kind in NODE_KINDS:
        assert load_kind(kind).kind == kind


def test_an_unknown_kind_lists_the_supported_ones():
    with pytest.raises(
        InvalidArgument, match=r"unknown node kind 'billing-x'; supported: .*\becho\b"
    ):
        load_kind("billing-x")


def test_a_table_entry_must_name_a_node_of_that_kind():
    with pytest.raises(TypeError, match="not a Node subclass"):
        load_kind("x", kinds={"x": "powerbus.nodes.sdk:NodeConfig"})
    with pytest.raises(TypeError, match="kind is 'echo', listed as 'y'"):
        load_kind("y", kinds={"y": "powerbus.nodes.echo:EchoNode"})
