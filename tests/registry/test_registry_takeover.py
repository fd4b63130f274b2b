"""Who gets a live node id again: its lease holder, or the instance now answering at the
address (NodeInstance/Identify); nobody else. In process: a registry and small gRPC
servers standing for node instances, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from powerbus.nodes.sdk.registration import InstanceProof
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

T = 5.0
Instance = tuple[InstanceProof, str, grpc.aio.Server]
StartInstance = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def instance() -> AsyncIterator[StartInstance]:
    """Starts a process stand-in serving Identify for a node id; stopped afterwards."""
    servers: list[grpc.aio.Server] = []

    async def start(node_id: str, port: int = 0) -> Instance:
        proof = InstanceProof(node_id)
        server = grpc.aio.server()
        registry_pb2_grpc.add_NodeInstanceServicer_to_server(proof, server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        servers.append(server)
        return proof, f"127.0.0.1:{bound}", server

    yield start
    for server in servers:
        await server.stop(None)


async def _register(stub, request_for, proof, address, **fields):  # type: ignore[no-untyped-def]
    request = request_for("echo-1", address, instance_secret=proof.secret, **fields)
    return await stub.Register(request, timeout=T)


async def _code(call: Awaitable[object]) -> tuple[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code().name, caught.value.details() or ""


async def test_a_live_instance_keeps_its_id(stub, request_for, instance) -> None:
    holder, held_at, _ = await instance("echo-1")
    await _register(stub, request_for, holder, held_at)
    # Its own retry (same secret) is accepted: the instance at the address is the registrant.
    await _register(stub, request_for, holder, held_at)
    other, other_at, _ = await instance("echo-1")
    code, details = await _code(_register(stub, request_for, other, other_at))
    assert code == "ALREADY_EXISTS"
    assert details == (
        f"node_id: 'echo-1' is held by the live instance at {held_at}; "
        "only its lease holder may register it again"
    )


async def test_a_restart_on_a_new_port_takes_the_id_at_once(stub, request_for, instance) -> None:
    holder, held_at, server = await instance("echo-1")
    await _register(stub, request_for, holder, held_at)
    await server.stop(None)  # killed: nothing answers at the old address
    restarted, new_at, _ = await instance("echo-1")
    lease = await _register(stub, request_for, restarted, new_at)
    [node] = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes
    assert (node.address, node.health) == (new_at, registry_pb2.NODE_HEALTH_UP)
    beat = registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id=lease.lease_id)
    await stub.Heartbeat(beat, timeout=T)


async def test_a_restart_on_the_same_port_takes_the_id_at_once(stub, request_for, instance) -> None:
    holder, held_at, server = await instance("echo-1")
    await _register(stub, request_for, holder, held_at)
    await server.stop(None)
    restarted, again_at, _ = await instance("echo-1", port=int(held_at.rpartition(":")[2]))
    assert again_at == held_at
    await _register(stub, request_for, restarted, again_at)


async def test_claiming_an_address_that_does_not_prove_it_is_refused(
    stub, request_for, instance
) -> None:
    holder, held_at, server = await instance("echo-1")
    await _register(stub, request_for, holder, held_at)
    await server.stop(None)
    # The holder is gone, but the claimed address is served by someone else's instance.
    claimant = InstanceProof("echo-1")
    _, someone_at, _ = await instance("echo-1")
    code, details = await _code(_register(stub, request_for, claimant, someone_at))
    assert code == "PERMISSION_DENIED"
    assert details == (
        f"instance_secret: {someone_at} does not answer NodeInstance/Identify as 'echo-1' "
        "with this registration's instance digest, so it cannot take the id over"
    )


async def test_the_holder_re_registers_with_its_lease(stub, request_for) -> None:
    first = await stub.Register(request_for(weight=1), timeout=T)
    code, _ = await _code(stub.Register(request_for(weight=2, lease_id="stale"), timeout=T))
    assert code == "ALREADY_EXISTS"
    await stub.Register(request_for(weight=2, lease_id=first.lease_id), timeout=T)
    [node] = (await stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=T)).nodes
    assert node.weight == 2


async def test_a_secret_of_the_wrong_size_is_refused(stub, request_for) -> None:
    code, details = await _code(stub.Register(request_for(instance_secret=b"short"), timeout=T))
    assert (code, details) == (
        "INVALID_ARGUMENT",
        "instance_secret: 5 bytes; give 16 to 64 or none",
    )
