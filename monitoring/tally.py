"""Counts of calls that share a key: how many, how slow, how big.

A :class:`Tally` is the one accumulator behind every view of traffic: the Prometheus
collector reads cumulative tallies, the sliding window and the rollups read differences
between two :class:`Sample` s of them. Latency is kept as a histogram over gRPC's standard
bucket bounds (``LATENCY_BUCKETS_S``), not cumulative: bucket ``i`` counts latencies in
``(bounds[i-1], bounds[i]]`` and one more bucket counts those above the last bound, as the
``powerbus.traffic.v1.CallStats`` message carries them.

>>> t = Tally()
>>> t.add(0.0012, 10, 20); t.add(0.0031, 10, 20)
>>> (t.count, t.bytes_in, t.sample().quantile(0.5) <= 0.002)
(2, 20, True)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from powerbus.bus.kernel.calls import LATENCY_BUCKETS_S, CallOrigin
from powerbus.load_balancer import StatusCode

__all__ = ["BUCKET_COUNT", "Sample", "Tally", "TallyKey", "bucket_index", "quantile"]

BUCKET_COUNT = len(LATENCY_BUCKETS_S) + 1
"""Histogram entries per tally: one per bound plus one above the last."""


class TallyKey(NamedTuple):
    """What calls counted together share. Every field is a bounded label value."""

    service: str
    method: str
    node_id: str
    caller: str
    code: StatusCode
    origin: CallOrigin


def bucket_index(latency_s: float) -> int:
    """The histogram bucket of ``latency_s`` (upper bounds are inclusive, as ``le``)."""
    return bisect_left(LATENCY_BUCKETS_S, latency_s)


class Tally:
    """Running totals of calls with one :class:`TallyKey`; changed only on the event loop."""

    __slots__ = ("buckets", "bytes_in", "bytes_out", "count", "latency_sum")

    def __init__(self) -> None:
        self.count = 0
        self.latency_sum = 0.0
        self.buckets = [0] * BUCKET_COUNT
        self.bytes_in = 0
        self.bytes_out = 0

    def add(self, latency_s: float, bytes_in: int, bytes_out: int) -> None:
        """Count one call."""
        self.count += 1
        self.latency_sum += latency_s
        self.buckets[bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out

    def merge(self, sample: Sample) -> None:
        """Add counts made elsewhere (a proxyless client's report, a stored rollup)."""
        self.count += sample.count
        self.latency_sum += sample.latency_sum
        buckets = self.buckets
        for i, n in enumerate(sample.buckets):
            buckets[i] += n
        self.bytes_in += sample.bytes_in
        self.bytes_out += sample.bytes_out

    def sample(self) -> Sample:
        """An immutable copy of the totals now."""
        return Sample(
            self.count, self.latency_sum, tuple(self.buckets), self.bytes_in, self.bytes_out
        )


@dataclass(frozen=True, slots=True)
class Sample:
    """Totals at one moment, or the difference of two moments."""

    count: int = 0
    latency_sum: float = 0.0
    buckets: tuple[int, ...] = (0,) * BUCKET_COUNT
    bytes_in: int = 0
    bytes_out: int = 0

    def __sub__(self, earlier: Sample) -> Sample:
        return Sample(
            self.count - earlier.count,
            self.latency_sum - earlier.latency_sum,
            tuple(a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)),
            self.bytes_in - earlier.bytes_in,
            self.bytes_out - earlier.bytes_out,
        )

    def __add__(self, other: Sample) -> Sample:
        return Sample(
            self.count + other.count,
            self.latency_sum + other.latency_sum,
            tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)),
            self.bytes_in + other.bytes_in,
            self.bytes_out + other.bytes_out,
        )

    @classmethod
    def total(cls, samples: Iterable[Sample]) -> Sample:
        """The sum of ``samples`` (an empty sample for none)."""
        count = 0
        latency_sum = 0.0
        buckets = [0] * BUCKET_COUNT
        bytes_in = bytes_out = 0
        for s in samples:
            count += s.count
            latency_sum += s.latency_sum
            for i, n in enumerate(s.buckets):
                buckets[i] += n
            bytes_in += s.bytes_in
            bytes_out += s.bytes_out
        return cls(count, latency_sum, tuple(buckets), bytes_in, bytes_out)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of latency in seconds, or None when nothing was counted."""
        return quantile(q, self.buckets)


def quantile(q: float, buckets: Sequence[int]) -> float | None:
    """Estimate a quantile from non-cumulative bucket counts, as PromQL's
    ``histogram_quantile`` does: linear interpolation inside the bucket it falls in.

    >>> round(quantile(0.5, [0, 0, 10] + [0] * (BUCKET_COUNT - 3)), 9)  # all in (1e-5, 5e-5]
    3e-05
    """
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i >= len(LATENCY_BUCKETS_S):
                return LATENCY_BUCKETS_S[-1]  # above the last bound: the bound is all we know
            upper = LATENCY_BUCKETS_S[i]
            lower = LATENCY_BUCKETS_S[i - 1] if i else 0.0
            return lower + (upper - lower) * max(0.0, rank - seen) / n
        seen += n
    return LATENCY_BUCKETS_S[-1]
