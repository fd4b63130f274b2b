"""Weighted pickers: random by weight, and smooth weighted round robin.

Both honour ``PickRequest.exclude`` while another endpoint is left, and keep what they
learned about a node across ``update`` calls (membership changes do not reset the turn).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from itertools import accumulate

from powerbus.load_balancer.endpoint import Endpoint
from powerbus.load_balancer.picker import Outcome, PickRequest

__all__ = ["SmoothRoundRobinPicker", "WeightedRandomPicker"]


def _ordered(endpoints: Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    # Sorted so every bus instance and client sees the same order; weight 0 never serves.
    return tuple(sorted((e for e in endpoints if e.weight > 0), key=lambda e: e.node_id))


class WeightedRandomPicker:
    """Picks each endpoint with probability weight / total weight (Dubbo's default).

    >>> p = WeightedRandomPicker(rng=random.Random(7))
    >>> p.update([Endpoint("a", "h:1", weight=300), Endpoint("b", "h:2", weight=100)])
    >>> sorted({p.pick(PickRequest()).node_id for _ in range(50)})
    ['a', 'b']
    """

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._endpoints: tuple[Endpoint, ...] = ()
        self._cumulative: list[int] = []
        self._total = 0

    def update(self, endpoints: Sequence[Endpoint]) -> None:
        self._endpoints = _ordered(endpoints)
        self._cumulative = list(accumulate(e.weight for e in self._endpoints))
        self._total = self._cumulative[-1] if self._cumulative else 0

    def pick(self, request: PickRequest) -> Endpoint | None:
        if not self._endpoints:
            return None
        chosen = self._endpoints[self._index(self._cumulative, self._total)]
        if chosen.node_id not in request.exclude:
            return chosen
        allowed = [e for e in self._endpoints if e.node_id not in request.exclude]
        if not allowed:
            return chosen
        cumulative = list(accumulate(e.weight for e in allowed))
        return allowed[self._index(cumulative, cumulative[-1])]

    def _index(self, cumulative: list[int], total: int) -> int:
        return bisect.bisect_right(cumulative, self._rng.random() * total)

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None:
        """Random learns nothing from outcomes."""


class SmoothRoundRobinPicker:
    """Smooth weighted round robin (nginx, Dubbo ``roundrobin``): over any run of
    ``total weight`` picks each endpoint serves exactly its weight, interleaved rather
    than in bursts. With equal weights it is plain round robin.

    >>> p = SmoothRoundRobinPicker()
    >>> p.update([Endpoint("a", "h:1", weight=5), Endpoint("b", "h:2", weight=1),
    ...           Endpoint("c", "h:3", weight=1)])
    >>> "".join(p.pick(PickRequest()).node_id for _ in range(7))
    'aabacaa'
    """

    def __init__(self) -> None:
        self._endpoints: tuple[Endpoint, ...] = ()
        self._current: dict[str, int] = {}

    def update(self, endpoints: Sequence[Endpoint]) -> None:
        old = {e.node_id: e.weight for e in self._endpoints}
        self._endpoints = _ordered(endpoints)
        # A node whose weight changed starts afresh; the others keep their place.
        self._current = {
            e.node_id: self._current.get(e.node_id, 0) if old.get(e.node_id) == e.weight else 0
            for e in self._endpoints
        }

    def pick(self, request: PickRequest) -> Endpoint | None:
        endpoints = self._endpoints
        if not endpoints:
            return None
        exclude = request.exclude
        if exclude and all(e.node_id in exclude for e in endpoints):
            exclude = frozenset()
        current = self._current
        best: Endpoint | None = None
        best_value = 0
        total = 0
        for e in endpoints:
            if e.node_id in exclude:
                continue
            value = current[e.node_id] + e.weight
            current[e.node_id] = value
            total += e.weight
            if best is None or value > best_value:
                best, best_value = e, value
        assert best is not None
        current[best.node_id] = best_value - total
        return best

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None:
        """Round robin learns nothing from outcomes."""
