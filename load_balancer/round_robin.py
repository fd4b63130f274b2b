"""Round robin: each endpoint in turn, ignoring weights."""

from __future__ import annotations

from collections.abc import Sequence

from powerbus.load_balancer.endpoint import Endpoint
from powerbus.load_balancer.picker import Outcome, PickRequest

__all__ = ["RoundRobinPicker"]


class RoundRobinPicker:
    """Picks endpoints in turn.

    >>> p = RoundRobinPicker()
    >>> p.update([Endpoint("a", "h:1"), Endpoint("b", "h:2")])
    >>> [p.pick(PickRequest()).node_id for _ in range(3)]
    ['a', 'b', 'a']
    """

    def __init__(self) -> None:
        self._endpoints: tuple[Endpoint, ...] = ()
        self._next = 0

    def update(self, endpoints: Sequence[Endpoint]) -> None:
        # Sorted so every bus instance and client walks the same order.
        self._endpoints = tuple(sorted(endpoints, key=lambda e: e.node_id))

    def pick(self, request: PickRequest) -> Endpoint | None:
        endpoints = self._endpoints
        n = len(endpoints)
        if n == 0:
            return None
        for _ in range(n):
            endpoint = endpoints[self._next % n]
            self._next = (self._next + 1) % n
            if endpoint.node_id not in request.exclude:
                return endpoint
        return endpoints[self._next % n]

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None:
        """Round robin learns nothing from outcomes."""
