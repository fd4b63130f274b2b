"""Impact analysis: what breaks if a node goes down.

The node's services lose its capacity; a service whose every healthy node is lost goes
*dark*. A node that needs a dark service (a required declared dependency, or calls it is
seen making) cannot do its job either, so it is lost too, and so on until nothing
changes — which also ends on dependency cycles. Callers of dark services are hit by an
outage; callers of services that only lost capacity (or fail over to standby nodes) are
hit by a degradation.

>>> from powerbus.monitoring.health import OperatorHealth as H
>>> from powerbus.monitoring.topology import DeclaredEdge, ServiceView, Topology, TopologyNode
>>> g = Topology(
...     nodes=[TopologyNode(node_id="db-1", kind="db", health=H.UP, services=("Db",)),
...            TopologyNode(node_id="app-1", kind="app", health=H.UP, services=("App",))],
...     services=[ServiceView(name="Db", nodes=("db-1",), healthy=("db-1",)),
...               ServiceView(name="App", nodes=("app-1",), healthy=("app-1",))],
...     declared=[DeclaredEdge(caller="app-1", service="Db")], observed=[])
>>> [(s.service, s.effect) for s in impact_of(g, "db-1").services]
[('Db', 'dark'), ('App', 'dark')]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from powerbus.monitoring.topology import ServiceView, Topology

__all__ = ["CallerImpact", "Impact", "ServiceImpact", "impact_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceImpact:
    service: str
    effect: str
    """``dark`` (no healthy node left), ``failover`` (only standby nodes left) or
    ``degraded`` (fewer nodes)."""
    healthy_before: int
    healthy_after: int
    capacity_lost: float
    """Share of the service's weight that is lost, 0..1."""
    depth: int
    """0: served by the node itself; n: through n lost dependencies."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerImpact:
    caller: str
    services: tuple[str, ...]
    """The services it calls that are hit, worst first."""
    effect: str
    """``outage`` (a service it calls goes dark) or ``degraded``."""
    required: bool
    """It needs the first of ``services`` (declared required, or seen calling it)."""
    depth: int
    """1: calls the node's own services; n: hit through n - 1 lost dependencies."""

    @property
    def service(self) -> str:
        return self.services[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Impact:
    node: str
    known: bool
    services: list[ServiceImpact]
    callers: list[CallerImpact]
    impaired_nodes: dict[str, str]
    """Other nodes that cannot work once ``node`` is down, with why."""
    single_points_of_failure: list[str]
    cycles: list[list[str]]

    def as_json(self) -> dict[str, object]:
        return {
            "node": self.node,
            "known": self.known,
            "services": [
                {
                    "service": s.service,
                    "effect": s.effect,
                    "healthy_before": s.healthy_before,
                    "healthy_after": s.healthy_after,
                    "capacity_lost": round(s.capacity_lost, 4),
                    "depth": s.depth,
                }
                for s in self.services
            ],
            "dark_services": [s.service for s in self.services if s.effect == "dark"],
            "callers_hit": [
                {
                    "caller": c.caller,
                    "service": c.service,
                    "services": list(c.services),
                    "effect": c.effect,
                    "required": c.required,
                    "depth": c.depth,
                }
                for c in self.callers
            ],
            "impaired_nodes": [
                {"node": n, "because": why} for n, why in self.impaired_nodes.items()
            ],
            "single_points_of_failure": self.single_points_of_failure,
            "cycles": self.cycles,
        }


def impact_of(topology: Topology, node_id: str) -> Impact:
    """What ``node_id`` going down does to ``topology``; see the module docstring."""
    lost, dark = _spread(topology, node_id)
    services: list[ServiceImpact] = []
    for view in topology.services:
        gone = [n for n in view.healthy if n in lost]
        if gone:
            services.append(_service_impact(topology, view, gone, lost, dark))
    services.sort(key=lambda s: (_EFFECT_ORDER[s.effect], s.depth, s.service))
    # Services are sorted worst first, so a caller's first entry is its worst.
    callers: dict[str, CallerImpact] = {}
    for s in services:
        for caller, required in sorted(topology.callers_of(s.service).items()):
            if caller == node_id:
                continue
            seen = callers.get(caller)
            if seen is not None:
                callers[caller] = replace(seen, services=(*seen.services, s.service))
                continue
            callers[caller] = CallerImpact(
                caller=caller,
                services=(s.service,),
                effect="outage" if s.effect == "dark" else "degraded",
                required=required,
                depth=s.depth + 1,
            )
    return Impact(
        node=node_id,
        known=topology.node(node_id) is not None,
        services=services,
        callers=sorted(callers.values(), key=lambda c: (c.depth, c.effect != "outage", c.caller)),
        impaired_nodes={n: why for n, (_, why) in lost.items() if n != node_id},
        single_points_of_failure=topology.single_points_of_failure(),
        cycles=topology.cycles(),
    )


_EFFECT_ORDER = {"dark": 0, "failover": 1, "degraded": 2}


def _spread(topology: Topology, node_id: str) -> tuple[dict[str, tuple[int, str]], dict[str, int]]:
    """Nodes lost (with depth and reason) and services gone dark (with depth)."""
    lost: dict[str, tuple[int, str]] = {node_id: (0, "down")}
    dark: dict[str, int] = {}
    depth = 0
    while True:
        changed = False
        for s in topology.services:
            if s.name not in dark and s.healthy and all(n in lost for n in s.healthy):
                dark[s.name] = max(lost[n][0] for n in s.healthy)
                changed = True
        for node in topology.nodes:
            if node.node_id in lost or not node.health.ok:
                continue
            for service in sorted(topology.calls_of(node.node_id)):
                required = topology.callers_of(service).get(node.node_id, True)
                if service in dark and required:
                    lost[node.node_id] = (dark[service] + 1, f"needs {service}")
                    changed = True
                    break
        if not changed:
            return lost, dark
        depth += 1


def _service_impact(
    topology: Topology,
    s: ServiceView,
    gone: list[str],
    lost: dict[str, tuple[int, str]],
    dark: dict[str, int],
) -> ServiceImpact:
    remaining = [n for n in s.healthy if n not in lost]
    weight = {n: _weight(topology, n) for n in s.healthy}
    total = sum(weight.values()) or 1
    if s.name in dark:
        effect = "dark"
    elif all(_priority(topology, n) == "standby" for n in remaining) and any(
        _priority(topology, n) == "primary" for n in gone
    ):
        effect = "failover"
    else:
        effect = "degraded"
    return ServiceImpact(
        service=s.name,
        effect=effect,
        healthy_before=len(s.healthy),
        healthy_after=len(remaining),
        capacity_lost=sum(weight[n] for n in gone) / total,
        depth=min(lost[n][0] for n in gone),
    )


def _weight(topology: Topology, node_id: str) -> int:
    node = topology.node(node_id)
    return node.weight if node else 0


def _priority(topology: Topology, node_id: str) -> str:
    node = topology.node(node_id)
    return node.priority if node else "primary"
