"""Least request: the power of two choices over calls in flight, weighted.

Two distinct endpoints are drawn at random and the one with fewer calls in flight per
unit of weight wins, as in Envoy's ``LEAST_REQUEST``. Unlike Dubbo's ``leastactive``,
weights (and so slow start) count: a new, idle node is not flooded.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from powerbus.load_balancer.endpoint import Endpoint
from powerbus.load_balancer.picker import Outcome, PickRequest

__all__ = ["LeastRequestPicker", "two_choices"]


def two_choices(rng: random.Random, n: int) -> tuple[int, int]:
    """Two distinct indexes below ``n`` (``n >= 2``), uniformly."""
    i = rng.randrange(n)
    j = rng.randrange(n - 1)
    return i, j + 1 if j >= i else j


def candidates(endpoints: tuple[Endpoint, ...], exclude: frozenset[str]) -> tuple[Endpoint, ...]:
    """``endpoints`` less the excluded ones, unless that leaves none."""
    if not exclude:
        return endpoints
    allowed = tuple(e for e in endpoints if e.node_id not in exclude)
    return allowed or endpoints


class LeastRequestPicker:
    """P2C over in-flight calls divided by weight.

    Every endpoint ``pick`` returns must be ``report``-ed once when its call ends; that is
    how in-flight calls are counted.

    >>> p = LeastRequestPicker(rng=random.Random(1))
    >>> a, b = Endpoint("a", "h:1"), Endpoint("b", "h:2")
    >>> p.update([a, b])
    >>> first = p.pick(PickRequest())
    >>> second = p.pick(PickRequest())      # the other one: the first is busier now
    >>> first.node_id != second.node_id
    True
    """

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._endpoints: tuple[Endpoint, ...] = ()
        self.active: dict[str, int] = {}
        """Calls in flight per node id."""

    def update(self, endpoints: Sequence[Endpoint]) -> None:
        self._endpoints = tuple(sorted((e for e in endpoints if e.weight > 0), key=_by_id))
        ids = {e.node_id for e in self._endpoints}
        # Calls still in flight to a node that left are counted until they report.
        self.active = {k: v for k, v in self.active.items() if v > 0 or k in ids}
        for node_id in ids:
            self.active.setdefault(node_id, 0)

    def load(self, endpoint: Endpoint) -> float:
        """What P2C compares: calls in flight, plus the one about to start, per weight."""
        return (self.active.get(endpoint.node_id, 0) + 1) / endpoint.weight

    def pick(self, request: PickRequest) -> Endpoint | None:
        pool = candidates(self._endpoints, request.exclude)
        if not pool:
            return None
        if len(pool) == 1:
            chosen = pool[0]
        else:
            i, j = two_choices(self._rng, len(pool))
            a, b = pool[i], pool[j]
            chosen = b if self.load(b) < self.load(a) else a
        self.active[chosen.node_id] = self.active.get(chosen.node_id, 0) + 1
        return chosen

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None:
        count = self.active.get(endpoint.node_id, 0)
        if count > 0:
            self.active[endpoint.node_id] = count - 1


def _by_id(endpoint: Endpoint) -> str:
    return endpoint.node_id
