"""Who is on the other end of a gRPC call, and how often each one may ask.

grpc names a peer ``ipv4:127.0.0.1:5000``; the port changes with every connection, so
limits and records key on the host. A :class:`PeerRateLimit` is a token bucket per key
(a host, or an authenticated identity): ``burst`` at once, then ``rate`` a second.

>>> peer_host("ipv4:10.0.0.7:5000"), peer_host("ipv6:[::1]:5000"), peer_host("unix:/tmp/s")
('10.0.0.7', '::1', 'unix:/tmp/s')
>>> now = [0.0]
>>> limit = PeerRateLimit("registrations", rate=1.0, burst=2, clock=lambda: now[0])
>>> limit.take("a"); limit.take("a")
>>> limit.take("a")  # doctest: +ELLIPSIS
Traceback (most recent call last):
powerbus.bus.kernel.errors.ResourceExhausted: registrations from a: more than ... 1/s; ...
>>> now[0] = 1.0; limit.take("a")
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from powerbus.bus.kernel.errors import ConfigError, ResourceExhausted

__all__ = ["PeerRateLimit", "peer_host"]


def peer_host(peer: str) -> str:
    """The host of a grpc peer string (``unix:`` and unknown kinds come back whole)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return peer


class PeerRateLimit:
    """A token bucket per key for requests of one kind (``what`` names them in refusals).

    Remembers at most ``max_peers`` keys, the least recently seen dropped first (a dropped
    key starts again with a full bucket, which only ever errs towards letting a peer in).
    """

    def __init__(
        self,
        what: str,
        *,
        rate: float,
        burst: int,
        max_peers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ConfigError(f"{what} rate: rate {rate} and burst {burst} must be positive")
        self._what = what
        self._rate, self._burst, self._max = rate, burst, max_peers
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, peer: str) -> None:
        """Take one token for ``peer`` or raise :class:`ResourceExhausted` naming the limit."""
        now = self._clock()
        tokens, last = self._buckets.pop(peer, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[peer] = (tokens, now)
            raise ResourceExhausted(
                f"{self._what} from {peer}: more than the limit of {self._burst} at once, "
                f"then {self._rate:g}/s; retry later"
            )
        self._buckets[peer] = (tokens - 1.0, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
