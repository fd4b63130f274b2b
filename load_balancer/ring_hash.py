"""Consistent hashing on the affinity key (``x-powerbus-key``), with bounded load.

A ring of points, ``points_per_100`` for every 100 units of a node's weight, hashed from
the node id with BLAKE2b, so every bus instance and client builds the same ring and a
node joining or leaving moves only the keys between its points and their neighbours
(about 1/N of them). A key goes to the first point clockwise from its hash.

Bounded load ("Consistent Hashing with Bounded Loads", Mirrokni et al.; Envoy's
``hash_balance_factor``): a node may have at most ``balance_factor`` times its weighted
share of the calls in flight; a key whose node is full walks on to the next point, so
one hot key cannot melt one node. Calls without a key use least request.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from powerbus.load_balancer.endpoint import Endpoint
from powerbus.load_balancer.least_request import LeastRequestPicker
from powerbus.load_balancer.picker import Outcome, PickRequest

__all__ = ["RingHashPicker", "RingHashSettings", "hash64"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RingHashSettings:
    points_per_100: int = 256
    """Ring points per 100 units of weight; more points spread keys more evenly."""
    balance_factor: float = 0.0
    """Bound on a node's calls in flight, as a multiple of its fair share (e.g. 1.25);
    0 turns bounded load off."""


def hash64(text: str) -> int:
    """A stable 64-bit hash (Python's ``hash`` differs between processes).

    >>> hash64("meter-42") == hash64("meter-42")
    True
    """
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class RingHashPicker:
    """Same key, same node, as long as the node is there and not over its bound.

    >>> p = RingHashPicker()
    >>> p.update([Endpoint(f"n{i}", f"h:{i}") for i in range(3)])
    >>> first = p.pick(PickRequest(key="meter-42")).node_id
    >>> all(p.pick(PickRequest(key="meter-42")).node_id == first for _ in range(10))
    True
    """

    def __init__(
        self, settings: RingHashSettings | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.settings = settings or RingHashSettings()
        self._fallback = LeastRequestPicker(rng=rng)
        self.active = self._fallback.active
        self._endpoints: tuple[Endpoint, ...] = ()
        self._hashes: list[int] = []
        self._owners: list[Endpoint] = []
        self._total_weight = 0

    def update(self, endpoints: Sequence[Endpoint]) -> None:
        usable = tuple(sorted((e for e in endpoints if e.weight > 0), key=lambda e: e.node_id))
        self._fallback.update(usable)
        self.active = self._fallback.active
        if usable == self._endpoints:
            return
        points: list[tuple[int, str, Endpoint]] = []
        for e in usable:
            count = max(1, math.ceil(self.settings.points_per_100 * e.weight / 100))
            points += [(hash64(f"{e.node_id}#{i}"), e.node_id, e) for i in range(count)]
        points.sort(key=lambda p: (p[0], p[1]))
        self._hashes = [p[0] for p in points]
        self._owners = [p[2] for p in points]
        self._endpoints = usable
        self._total_weight = sum(e.weight for e in usable)

    def capacity(self, endpoint: Endpoint) -> int:
        """The most calls ``endpoint`` may have in flight, counting one more call."""
        in_flight = sum(self.active.values()) + 1
        share = in_flight * endpoint.weight / self._total_weight
        return math.ceil(self.settings.balance_factor * share)

    def owner(self, key: str) -> Endpoint | None:
        """The node ``key`` maps to, load aside."""
        if not self._hashes:
            return None
        index = bisect.bisect_left(self._hashes, hash64(key))
        return self._owners[index % len(self._owners)]

    def pick(self, request: PickRequest) -> Endpoint | None:
        if request.key is None:
            return self._fallback.pick(request)
        if not self._hashes:
            return None
        chosen = self._walk(hash64(request.key), request.exclude)
        self.active[chosen.node_id] = self.active.get(chosen.node_id, 0) + 1
        return chosen

    def _walk(self, point: int, exclude: frozenset[str]) -> Endpoint:
        owners = self._owners
        n = len(owners)
        start = bisect.bisect_left(self._hashes, point)
        if exclude and all(e.node_id in exclude for e in self._endpoints):
            exclude = frozenset()
        bounded = self.settings.balance_factor > 0
        rejected: set[str] = set()
        first_allowed: Endpoint | None = None
        for step in range(n):
            e = owners[(start + step) % n]
            if e.node_id in exclude or e.node_id in rejected:
                continue
            if first_allowed is None:
                first_allowed = e
            if not bounded or self.active.get(e.node_id, 0) < self.capacity(e):
                return e
            rejected.add(e.node_id)
        # Every node at its bound (a factor below 1 allows that): the key's own node.
        assert first_allowed is not None
        return first_allowed

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None:
        self._fallback.report(endpoint, outcome)
