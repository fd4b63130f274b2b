"""A bus that stood still itself does not blame its nodes (issue 14, defect 2): after
SIGSTOP/SIGCONT of the bus, leases are extended by the stall instead of lapsing at once."""

from __future__ import annotations

import time

import grpc

from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc


def listed(address: str) -> dict[str, tuple[str, str]]:
    with grpc.insecure_channel(address) as channel:
        reply = registry_pb2_grpc.RegistryStub(channel).ListNodes(
            registry_pb2.ListNodesRequest(include_down=True), timeout=5
        )
    return {n.node_id: (registry_pb2.NodeHealth.Name(n.health), n.lease_id) for n in reply.nodes}


def test_leases_outlive_a_pause_of_the_bus(bus_factory, node_factory):
    bus = bus_factory(lease_ttl="2s")
    node_factory("echo", bus=bus, node_id="echo-1")
    assert listed(bus.grpc)["echo-1"][0] == "NODE_HEALTH_UP"
    bus.pause()
    try:
        time.sleep(5)  # the stall under test: more than twice the lease
    finally:
        bus.resume()
    # Health, not the lease id: a node whose heartbeats timed out through the stall may
    # register again when the bus wakes, which is its right; what must not happen is the
    # bus marking it down for the bus's own pause.
    deadline = time.monotonic() + 4  # two leases after waking up
    while time.monotonic() < deadline:
        assert {node: health for node, (health, _) in listed(bus.grpc).items()} == {
            "echo-1": "NODE_HEALTH_UP"
        }
        time.sleep(0.2)
    assert "stalled" in bus.stderr_path.read_text(encoding="utf-8")
