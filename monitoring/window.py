"""The recent past of traffic: samples of every tally once a second, kept a few minutes,
so rates, error shares and percentiles over any recent window are differences of two
samples.

>>> w = SampleWindow(keep_s=60)
>>> w.add(100.0, {}); w.add(101.0, {})
>>> w.span(10.0)[2]
1.0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from powerbus.load_balancer import StatusCode
from powerbus.monitoring.tally import Sample, TallyKey

__all__ = ["Rates", "SampleWindow", "rates_by"]

Snapshot = Mapping[TallyKey, Sample]


@dataclass(frozen=True, slots=True)
class Rates:
    """Traffic of some group of calls over a window."""

    requests: int
    errors: int
    seconds: float
    sample: Sample

    @property
    def qps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float | None:
        return self.sample.quantile(q)

    def as_json(self) -> dict[str, object]:
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "qps": round(self.qps, 3),
            "error_share": round(self.error_share, 5),
            "p50_ms": None if p50 is None else round(p50 * 1000, 3),
            "p99_ms": None if p99 is None else round(p99 * 1000, 3),
            "bytes_in": self.sample.bytes_in,
            "bytes_out": self.sample.bytes_out,
        }


class SampleWindow:
    """Timestamped snapshots of every tally; the newest and older ones to compare with."""

    def __init__(self, *, keep_s: float) -> None:
        self.keep_s = keep_s
        """How many seconds of samples are kept (may be raised while running)."""
        self._snapshots: deque[tuple[float, Snapshot]] = deque()

    def add(self, at: float, snapshot: Snapshot) -> None:
        """Remember ``snapshot`` taken at ``at`` (monotonic seconds); forget old ones."""
        self._snapshots.append((at, snapshot))
        while len(self._snapshots) > 2 and at - self._snapshots[1][0] >= self.keep_s:
            self._snapshots.popleft()

    @property
    def latest(self) -> Snapshot:
        return self._snapshots[-1][1] if self._snapshots else {}

    def span(self, seconds: float) -> tuple[Snapshot, Snapshot, float]:
        """(older, newest, seconds between): the oldest snapshot at most ``seconds`` old
        (the oldest kept when history is shorter), and the newest."""
        if not self._snapshots:
            return {}, {}, 0.0
        now, newest = self._snapshots[-1]
        older_at, older = self._snapshots[0]
        for at, snap in reversed(self._snapshots):
            if now - at > seconds:
                break
            older_at, older = at, snap
        return older, newest, now - older_at

    def deltas(self, seconds: float) -> tuple[dict[TallyKey, Sample], float]:
        """What each key counted over the last ``seconds`` (keys that counted nothing left
        out), and the actual length of the window."""
        older, newest, length = self.span(seconds)
        empty = Sample()
        result: dict[TallyKey, Sample] = {}
        for key, sample in newest.items():
            before = older.get(key)
            if before is sample:
                continue
            delta = sample - before if before is not None else sample - empty
            if delta.count > 0:
                result[key] = delta
        return result, length


def rates_by(
    deltas: Mapping[TallyKey, Sample],
    seconds: float,
    group: Callable[[TallyKey], object | None],
) -> dict[object, Rates]:
    """Sum ``deltas`` by ``group(key)`` (None leaves a key out) into :class:`Rates`."""
    grouped: dict[object, list[tuple[TallyKey, Sample]]] = {}
    for key, sample in deltas.items():
        name = group(key)
        if name is not None:
            grouped.setdefault(name, []).append((key, sample))
    return {name: _rates(items, seconds) for name, items in grouped.items()}


def _rates(items: Iterable[tuple[TallyKey, Sample]], seconds: float) -> Rates:
    items = list(items)
    total = Sample.total(s for _, s in items)
    errors = sum(s.count for k, s in items if k.code != StatusCode.OK)
    return Rates(requests=total.count, errors=errors, seconds=seconds, sample=total)
