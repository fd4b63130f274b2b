"""The node-relationship graph: nodes, services, declared dependencies and observed calls.

Declared edges come from registrations (node → service it depends on); observed edges
from traffic (caller → service → node, with rate and error share over the last minute,
and every edge seen since the bus started or found in the last hour of history). From
both, services depend on services: a service depends on whatever its nodes call.
Dependency cycles are found on that service graph, and a service is a single point of
failure when exactly one healthy node serves it and something depends on it.

>>> g = Topology(nodes=[], services=[], declared=[], observed=[])
>>> (g.cycles(), g.single_points_of_failure(), g.to_dot().splitlines()[0])
([], [], 'digraph powerbus {')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from powerbus.monitoring.event_edges import EventEdge, EventRole
from powerbus.monitoring.health import OperatorHealth

__all__ = ["DeclaredEdge", "ObservedEdge", "ServiceView", "Topology", "TopologyNode"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TopologyNode:
    node_id: str
    kind: str
    health: OperatorHealth
    services: tuple[str, ...]
    priority: str = "primary"
    weight: int = 100
    zone: str = ""
    address: str = ""
    silent_s: float | None = None
    """Seconds since its last heartbeat (None: unknown)."""
    lease_ttl_s: float | None = None
    """Its lease, in seconds (None: unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceView:
    name: str
    nodes: tuple[str, ...]
    """Nodes that serve it, apart from those that left cleanly."""
    healthy: tuple[str, ...]
    """Nodes that take calls now (health up)."""
    left: tuple[str, ...] = ()
    """Nodes that deregistered (kept a while by the registry)."""

    @property
    def state(self) -> str:
        """``ok`` (every node up), ``degraded`` (some) or ``dark`` (none)."""
        if not self.healthy:
            return "dark"
        return "ok" if len(self.healthy) == len(self.nodes) else "degraded"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclaredEdge:
    """A node declared at registration that it calls ``service``."""

    caller: str
    service: str
    required: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedEdge:
    """Calls seen from ``caller`` to ``service`` served by ``node``."""

    caller: str
    service: str
    node: str
    qps: float = 0.0
    error_share: float = 0.0
    requests: int = 0
    """Calls within the rate window."""
    total: int = 0
    """Calls since the bus started."""


@dataclass
class Topology:
    """One picture of the bus; build it with :meth:`Monitoring.topology`."""

    nodes: list[TopologyNode]
    services: list[ServiceView]
    declared: list[DeclaredEdge]
    observed: list[ObservedEdge]
    events: list[EventEdge] = field(default_factory=list)
    """Publishers and subscribers of events (``monitoring.event_edges``)."""
    _by_node: dict[str, TopologyNode] = field(init=False, repr=False)
    _by_service: dict[str, ServiceView] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_node = {n.node_id: n for n in self.nodes}
        self._by_service = {s.name: s for s in self.services}

    def node(self, node_id: str) -> TopologyNode | None:
        return self._by_node.get(node_id)

    def service(self, name: str) -> ServiceView | None:
        return self._by_service.get(name)

    def callers_of(self, service: str) -> dict[str, bool]:
        """Who calls ``service`` (declared or observed), and whether they need it
        (observed calls count as needed unless declared optional)."""
        found: dict[str, bool] = {}
        for e in self.observed:
            if e.service == service and e.caller:
                found[e.caller] = True
        for d in self.declared:
            if d.service == service:
                found[d.caller] = d.required
        return found

    def calls_of(self, caller: str) -> set[str]:
        """The services ``caller`` depends on (declared or observed)."""
        return {d.service for d in self.declared if d.caller == caller} | {
            e.service for e in self.observed if e.caller == caller
        }

    def service_edges(self) -> dict[tuple[str, str], set[str]]:
        """Service → service it depends on (through any of its nodes), with how it is
        known: ``declared``, ``observed`` or both."""
        edges: dict[tuple[str, str], set[str]] = {}
        for kind, pairs in (
            ("declared", ((d.caller, d.service) for d in self.declared)),
            ("observed", ((e.caller, e.service) for e in self.observed)),
        ):
            for caller, target in pairs:
                node = self._by_node.get(caller)
                for source in node.services if node else ():
                    edges.setdefault((source, target), set()).add(kind)
        return edges

    def cycles(self) -> list[list[str]]:
        """Each dependency cycle among services, as the services on it (first repeated
        last), found as strongly connected components (Tarjan)."""
        graph: dict[str, set[str]] = {}
        for source, target in self.service_edges():
            graph.setdefault(source, set()).add(target)
            graph.setdefault(target, set())
        cycles = []
        for component in _strongly_connected(graph):
            if len(component) > 1 or component[0] in graph[component[0]]:
                ordered = sorted(component)
                cycles.append([*ordered, ordered[0]])
        return sorted(cycles)

    def single_points_of_failure(self) -> list[str]:
        """Services with exactly one healthy node and at least one dependant."""
        return sorted(
            s.name for s in self.services if len(s.healthy) == 1 and self.callers_of(s.name)
        )

    def as_json(self) -> dict[str, object]:
        cycles = self.cycles()
        spofs = set(self.single_points_of_failure())
        registered = set(self._by_node)
        callers = sorted(
            {e.caller for e in self.observed if e.caller and e.caller not in registered}
        )
        return {
            "nodes": [
                {
                    "node_id": n.node_id,
                    "kind": n.kind,
                    "health": n.health.value,
                    "services": list(n.services),
                    "priority": n.priority,
                    "weight": n.weight,
                    "zone": n.zone,
                    "address": n.address,
                    "dependencies": sorted(self.calls_of(n.node_id)),
                }
                for n in self.nodes
            ],
            "services": [
                {
                    "service": s.name,
                    "nodes": list(s.nodes),
                    "healthy": list(s.healthy),
                    "left": list(s.left),
                    "state": s.state,
                    "single_point_of_failure": s.name in spofs,
                    "callers": sorted(self.callers_of(s.name)),
                }
                for s in self.services
            ],
            "external_callers": callers,
            "declared_edges": [
                {"caller": d.caller, "service": d.service, "required": d.required}
                for d in self.declared
            ],
            "observed_edges": [
                {
                    "caller": e.caller,
                    "service": e.service,
                    "node": e.node,
                    "qps": round(e.qps, 3),
                    "error_share": round(e.error_share, 5),
                    "requests": e.requests,
                    "total": e.total,
                }
                for e in self.observed
            ],
            "service_edges": [
                {"from": a, "to": b, "known_by": sorted(kinds)}
                for (a, b), kinds in sorted(self.service_edges().items())
            ],
            "cycles": cycles,
            "single_points_of_failure": sorted(spofs),
            "event_edges": [e.as_json() for e in self.events],
        }

    def to_dot(self) -> str:
        """The graph in Graphviz's language: callers → services → nodes."""
        lines = [
            "digraph powerbus {",
            "  rankdir=LR;",
            '  node [fontname="Helvetica"];',
        ]
        registered = set(self._by_node)
        for caller in sorted({e.caller for e in self.observed if e.caller} - registered):
            lines.append(f"  {_q('caller:' + caller)} [label={_q(caller)}, shape=plaintext];")
        for s in self.services:
            color = {"ok": "darkgreen", "degraded": "orange", "dark": "red"}[s.state]
            lines.append(
                f"  {_q('service:' + s.name)} [label={_q(s.name)}, shape=box, color={color}];"
            )
        for n in self.nodes:
            color = _DOT_COLOR[n.health]
            lines.append(
                f"  {_q('node:' + n.node_id)} [label={_q(n.node_id + chr(10) + n.health.value)}, "
                f"shape=ellipse, color={color}];"
            )
        for s in self.services:
            for node_id in s.nodes:
                lines.append(
                    f"  {_q('service:' + s.name)} -> {_q('node:' + node_id)} [arrowhead=none];"
                )
        for d in self.declared:
            style = "dashed" if d.required else "dotted"
            lines.append(
                f"  {_q(_caller_id(d.caller, registered))} -> {_q('service:' + d.service)} "
                f"[style={style}, label=declared];"
            )
        for e in self.observed:
            color = "red" if e.error_share > 0.05 else "black"
            lines.append(
                f"  {_q(_caller_id(e.caller, registered))} -> {_q('service:' + e.service)} "
                f'[label="{e.qps:.1f}/s → {e.node}", color={color}];'
            )
        if self.events:
            lines.append('  "events" [label="events", shape=cds];')
        for edge in self.events:
            peer = _q(_caller_id(edge.node, registered))
            if edge.role is EventRole.PUBLISHES:
                lines.append(
                    f'  {peer} -> "events" [label="{edge.rate_per_s:.1f} ev/s", style=bold];'
                )
            else:
                lag = f", lag {edge.lag}" if edge.lag else ""
                lines.append(
                    f'  "events" -> {peer} [label="{edge.rate_per_s:.1f} ev/s{lag}", style=bold];'
                )
        lines.append("}")
        return "\n".join(lines) + "\n"


_DOT_COLOR = {
    OperatorHealth.UP: "darkgreen",
    OperatorHealth.DRAINING: "orange",
    OperatorHealth.UNREACHABLE: "red",
    OperatorHealth.DOWN: "red",
    OperatorHealth.LEFT: "gray",
}


def _caller_id(caller: str, registered: set[str]) -> str:
    return ("node:" if caller in registered else "caller:") + caller


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _strongly_connected(graph: dict[str, set[str]]) -> Iterable[list[str]]:
    """Tarjan's algorithm, iterative so deep graphs do not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            vertex, targets = work[-1]
            if targets:
                target = targets.pop()
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, sorted(graph[target])))
                elif target in on_stack:
                    low[vertex] = min(low[vertex], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[vertex])
            if low[vertex] == index[vertex]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == vertex:
                        break
                yield component
