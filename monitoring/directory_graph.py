"""The registry's half of the node graph: nodes with their operator health, services
with their members, and the dependencies nodes declared; traffic adds the observed edges
and the event hub its publishers and subscribers.

>>> from powerbus.monitoring.health import HealthLog
>>> class Empty:
...     def nodes(self, include_down=False): return []
...     def services(self): return []
...     def service(self, name): return None
>>> directory_graph(Empty(), HealthLog(), unreachable=set(), observed=[], events=[]).nodes
[]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timezone

from powerbus.bus.kernel.nodes import DirectoryView
from powerbus.monitoring.event_edges import EventEdge
from powerbus.monitoring.health import HealthLog
from powerbus.monitoring.topology import (
    DeclaredEdge,
    ObservedEdge,
    ServiceView,
    Topology,
    TopologyNode,
)

__all__ = ["directory_graph"]


def directory_graph(
    directory: DirectoryView,
    health: HealthLog,
    *,
    unreachable: Collection[str],
    observed: Sequence[ObservedEdge],
    events: Sequence[EventEdge],
) -> Topology:
    """The graph now: every node the directory knows (down ones too), its health as
    ``health`` tells it given the nodes traffic found ``unreachable``."""
    now = datetime.now(timezone.utc)
    nodes = [
        TopologyNode(
            node_id=n.node_id,
            kind=n.kind,
            health=health.health_of(n, unreachable=n.node_id in unreachable),
            services=n.services,
            priority=n.priority.value,
            weight=n.weight,
            zone=n.zone,
            address=n.address,
            silent_s=(now - n.last_heartbeat_at).total_seconds(),
            lease_ttl_s=(n.lease_expires_at - n.last_heartbeat_at).total_seconds(),
        )
        for n in directory.nodes(include_down=True)
    ]
    by_id = {n.node_id: n for n in nodes}
    services = []
    for name in directory.services():
        entry = directory.service(name)
        members = [by_id[n.node_id] for n in entry.nodes] if entry else []
        services.append(
            ServiceView(
                name=name,
                nodes=tuple(n.node_id for n in members if n.health.value != "left"),
                healthy=tuple(n.node_id for n in members if n.health.ok),
                left=tuple(n.node_id for n in members if n.health.value == "left"),
            )
        )
    declared = [
        DeclaredEdge(caller=n.node_id, service=d.service, required=d.required)
        for n in directory.nodes(include_down=True)
        for d in n.dependencies
    ]
    return Topology(
        nodes=nodes,
        services=services,
        declared=declared,
        observed=list(observed),
        events=list(events),
    )
