"""One balancer and call executor per service, kept in step with the registry's directory
and the service's policy.

A *lane* is what the router needs for one service: the
:class:`~powerbus.load_balancer.Balancer` (nodes in rotation, health, ejection, breakers)
and the :class:`~powerbus.load_balancer.CallExecutor` (retries, hedging, modes). Lanes are
updated from directory and policy changes, never on the call path: a call costs one dict
look-up to find its lane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from powerbus.bus.kernel.errors import NoHealthyNode, Unimplemented
from powerbus.bus.policy import ALL_SERVICES, PolicyBook
from powerbus.bus.registry import Directory, DirectoryChange, NodeRecord
from powerbus.load_balancer import Endpoint, Lane, Outcome, Picker, PickRequest, Tier

__all__ = ["Balancers", "endpoint_of"]


def endpoint_of(node: NodeRecord) -> Endpoint:
    """The balancer's view of a registered node."""
    return Endpoint(
        node_id=node.node_id,
        address=node.address,
        weight=node.weight,
        zone=node.zone,
        tier=Tier(node.priority.value),
    )


class Balancers:
    """Lanes by service; raises the error a caller should see when there is none."""

    def __init__(
        self,
        directory: Directory,
        *,
        policies: PolicyBook | None = None,
        local_zone: str = "",
    ) -> None:
        self._directory = directory
        self._book = policies or PolicyBook()
        self._zone = local_zone
        self._lanes: dict[str, Lane] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.on_addresses: Callable[[set[str]], None] = lambda _addresses: None
        """Called with every address still in use after a change (to prune channels)."""
        self.on_members: Callable[[], None] = lambda: None
        """Called after the nodes of some service changed (health probes follow them)."""

    def start(self) -> None:
        self._unsubscribe = self._directory.add_listener(self._on_change)
        self._resync(self._directory.services())

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def lane(self, service: str) -> Lane | None:
        return self._lanes.get(service)

    def lanes(self) -> list[Lane]:
        return [self._lanes[name] for name in sorted(self._lanes)]

    def picker(self, service: str) -> Picker | None:
        lane = self._lanes.get(service)
        return lane.balancer if lane is not None else None

    def pick(self, service: str, request: PickRequest) -> Endpoint:
        """A node for one call of ``service`` (streams use this; unary calls go through the
        lane's executor). Every endpoint returned must be :meth:`report`-ed."""
        lane = self._lanes.get(service)
        if lane is None:
            raise self.missing(service)
        refusal = lane.balancer.admit()
        endpoint = lane.balancer.pick(request) if refusal is None else None
        if endpoint is not None:
            return endpoint
        raise NoHealthyNode((refusal or lane.balancer.refusal()).message)

    def missing(self, service: str) -> Unimplemented | NoHealthyNode:
        """The error for a service without a lane."""
        if self._directory.service(service) is None:
            return Unimplemented(f"no node has registered service {service}")
        return NoHealthyNode(f"service {service} has no healthy node")

    def report(self, service: str, endpoint: Endpoint, outcome: Outcome) -> None:
        """How a call to ``endpoint`` went, for pickers that learn from it."""
        lane = self._lanes.get(service)
        if lane is not None:
            lane.balancer.report(endpoint, outcome)

    def policies_changed(self, services: set[str]) -> None:
        """Apply new policies (from the policy watcher) to the lanes they concern."""
        names = list(self._lanes) if ALL_SERVICES in services else services
        for name in names:
            lane = self._lanes.get(name)
            if lane is not None:
                policy = self._book.policy(name)
                lane.configure(policy.balancer, policy.calls)
        self.on_members()

    def _on_change(self, change: DirectoryChange) -> None:
        # A node that re-registered may have dropped services: resync those too.
        before = change.previous.services if change.previous is not None else ()
        self._resync(tuple(dict.fromkeys((*change.node.services, *before))))

    def _resync(self, services: Iterable[str]) -> None:
        for service in services:
            entry = self._directory.service(service)
            healthy = entry.healthy if entry is not None else ()
            lane = self._lanes.get(service)
            if lane is None:
                if entry is None:
                    continue
                lane = self._lanes[service] = self._new_lane(service)
            lane.balancer.update([endpoint_of(n) for n in healthy])
        self.on_addresses({n.address for n in self._directory.nodes()})
        self.on_members()

    def _new_lane(self, service: str) -> Lane:
        policy = self._book.policy(service)
        return Lane(service, policy.balancer, policy.calls, local_zone=self._zone)
