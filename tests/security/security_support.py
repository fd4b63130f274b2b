"""Helpers of the security tests: legitimate traffic measured while an attack runs, and
an attacker's raw registry requests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pb2

from powerbus.bus.kernel.descriptors import descriptor_set_for
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

ECHO = "powerbus.echo.v1.Echo"
T = 5.0


@dataclass
class Traffic:
    """Echo calls through the bus: how many succeeded, and which nodes answered."""

    ok: int = 0
    failed: list[str] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)

    @property
    def success(self) -> float:
        total = self.ok + len(self.failed)
        return self.ok / total if total else 0.0


async def echo_traffic(bus_grpc: str, *, calls: int = 200, pace_s: float = 0.005) -> Traffic:
    """``calls`` Echo calls through the bus, one after another (bounded: each has a 5 s
    deadline), paced so an attack running beside them overlaps the whole run."""
    traffic = Traffic()
    async with grpc.aio.insecure_channel(bus_grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        for index in range(calls):
            try:
                reply = await stub.Echo(echo_pb2.EchoRequest(message=f"m{index}"), timeout=T)
            except grpc.aio.AioRpcError as exc:
                traffic.failed.append(f"{exc.code().name} {exc.details()}")
            else:
                traffic.ok += 1
                traffic.nodes.add(reply.node_id)
            await asyncio.sleep(pace_s)
    return traffic


async def until_done(attack: asyncio.Task[None], *, timeout: float = 30.0) -> None:
    """Stop an attack loop and wait for it (bounded)."""
    attack.cancel()
    await asyncio.wait({attack}, timeout=timeout)


def echo_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The echo service's file and its imports, as a node registers them."""
    return list(descriptor_set_for(echo_pb2.DESCRIPTOR).file)


def descriptor_set(files: list[descriptor_pb2.FileDescriptorProto]) -> bytes:
    return descriptor_pb2.FileDescriptorSet(file=files).SerializeToString()


def register_request(
    node_id: str, address: str, *, services: tuple[str, ...] = (), **fields: object
) -> registry_pb2.RegisterRequest:
    """What an attacker sends: by default a client-kind node with no services."""
    files = echo_files() if ECHO in services else []
    values: dict[str, object] = {"file_descriptor_set": descriptor_set(files), **fields}
    return registry_pb2.RegisterRequest(
        node_id=node_id, kind="rogue", address=address, services=services, **values
    )


async def list_nodes(bus_grpc: str) -> list[registry_pb2.Node]:
    async with grpc.aio.insecure_channel(bus_grpc) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        reply = await stub.ListNodes(registry_pb2.ListNodesRequest(include_down=True), timeout=T)
    return list(reply.nodes)


async def wait_up(bus_grpc: str, node_ids: set[str], *, timeout: float = 20.0) -> float:
    """Seconds until every node of ``node_ids`` is listed UP; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        up = {n.node_id for n in await list_nodes(bus_grpc) if n.health == 1}
        if node_ids <= up:
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sorted(node_ids)} not all up within {timeout} s")
