"""Peak EWMA: latency-aware power of two choices (Finagle, linkerd, Envoy's extension).

Each node's round-trip time is tracked as a moving average that jumps up to a slower
sample at once (the "peak") and decays towards faster ones over ``decay_s``. The cost of
a node is that latency times its calls in flight plus one, per unit of weight; of two
random nodes the cheaper one wins. A node that gets no calls (because it was slow) sees
its estimate decay with time, so it is tried again now and then instead of forever.

Failures of the node (not the caller's errors) count as slow: a node that fails fast
must not look fast.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from powerbus.load_balancer.endpoint import Endpoint
from powerbus.load_balancer.least_request import candidates, two_choices
from powerbus.load_balancer.picker import UNUSED, Outcome, PickRequest
from powerbus.load_balancer.status import NODE_FAILURE_CODES

__all__ = ["PeakEwmaPicker", "PeakEwmaSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeakEwmaSettings:
    """Envoy's defaults: decay 10 s, 10 ms for a node never measured."""

    decay_s: float = 10.0
    default_rtt_s: float = 0.010
    failure_penalty: float = 10.0
    """A failed call counts as this many times the node's current estimate (or as the
    default RTT, whichever is larger), however quickly it failed."""


class _Estimate:
    __slots__ = ("active", "ewma", "measured", "stamp")

    def __init__(self, ewma: float, stamp: float) -> None:
        self.ewma = ewma
        self.stamp = stamp
        self.active = 0
        self.measured = False

    def decayed(self, now: float, decay_s: float) -> float:
        elapsed = now - self.stamp
        return self.ewma * math.exp(-elapsed / decay_s) if elapsed > 0 else self.ewma

    def observe(self, rtt: float, now: float, decay_s: float) -> None:
        current = self.decayed(now, decay_s)
        if not self.measured:
            # The first call to a node also pays for the connection: not its speed.
            self.measured = True
            self.ewma = (current + rtt) / 2
        elif rtt > current:
            self.ewma = rtt
        else:
            w = math.exp(-max(now - self.stamp, 0.0) / decay_s)
            self.ewma = self.ewma * w + rtt * (1.0 - w)
        self.stamp = now


class PeakEwmaPicker:
    """P2C on ``peak EWMA latency x (in flight + 1) / weight``.

    Every endpoint ``pick`` returns must be ``report``-ed once when its call ends.

    >>> p = PeakEwmaPicker(rng=random.Random(3), clock=lambda: 0.0)
    >>> fast, slow = Endpoint("fast", "h:1"), Endpoint("slow", "h:2")
    >>> p.update([fast, slow])
    >>> p.report(p.pick(PickRequest(exclude=frozenset({"slow"}))), Outcome(True, 0.001))
    >>> p.report(p.pick(PickRequest(exclude=frozenset({"fast"}))), Outcome(True, 0.500))
    >>> {p.pick(PickRequest()).node_id for _ in range(5)}
    {'fast'}
    """

    def __init__(
        self,
        settings: PeakEwmaSettings | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or PeakEwmaSettings()
        self._rng = rng or random.Random()
        self._clock = clock
        self._endpoints: tuple[Endpoint, ...] = ()
        self._estimates: dict[str, _Estimate] = {}

    def update(self, endpoints: Sequence[Endpoint]) -> None:
        self._endpoints = tuple(sorted((e for e in endpoints if e.weight > 0), key=_by_id))
        ids = {e.node_id for e in self._endpoints}
        self._estimates = {k: v for k, v in self._estimates.items() if k in ids or v.active > 0}
        now = self._clock()
        for node_id in ids:
            if node_id not in self._estimates:
                self._estimates[node_id] = _Estimate(self.settings.default_rtt_s, now)

    def cost(self, endpoint: Endpoint, now: float | None = None) -> float:
        """What P2C compares for ``endpoint``."""
        estimate = self._estimates.get(endpoint.node_id)
        if estimate is None:
            return self.settings.default_rtt_s / endpoint.weight
        at = self._clock() if now is None else now
        latency = estimate.decayed(at, self.settings.decay_s)
        return latency * (estimate.active + 1) / endpoint.weight

    def estimate_s(self, node_id: str) -> float | None:
        """The node's current latency estimate, for operators."""
        estimate = self._estimates.get(node_id)
        return None if estimate is None else estimate.decayed(self._clock(), self.settings.decay_s)

    def pick(self, request: PickRequest) -> Endpoint | None:
        pool = candidates(self._endpoints, request.exclude)
        if not pool:
            return None
        if len(pool) == 1:
            chosen = pool[0]
        else:
            i, j = two_choices(self._rng, len(pool))
            a, b = pool[i], pool[j]
            now = self._clock()
            chosen = b if self.cost(b, now) < self.cost(a, now) else a
        self._estimates[chosen.node_id].active += 1
        return chosen

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None:
        estimate = self._estimates.get(endpoint.node_id)
        if estimate is None:
            return
        estimate.active = max(0, estimate.active - 1)
        if outcome is UNUSED:
            return
        rtt = outcome.latency_s
        settings = self.settings
        now = self._clock()
        if outcome.code in NODE_FAILURE_CODES:
            current = estimate.decayed(now, settings.decay_s)
            rtt = max(rtt, current * settings.failure_penalty, settings.default_rtt_s)
        estimate.observe(rtt, now, settings.decay_s)


def _by_id(endpoint: Endpoint) -> str:
    return endpoint.node_id
