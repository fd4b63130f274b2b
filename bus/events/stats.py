"""What the forwarder has seen: publishers (sources) and their rates, subscriptions, the
store's backlog. Counted by the forwarder's store thread, read by the dashboard's route.

Counters are plain ints written by one thread; readers take a copy under the GIL, which
is enough for figures shown to people.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

__all__ = ["EventStats", "SourceStats"]

_WINDOW_S = 10.0


@dataclass(slots=True)
class SourceStats:
    """One publisher as the forwarder saw it."""

    events: int = 0
    last_sequence: int = 0
    last_topic: str = ""
    last_seen: float = 0.0


@dataclass
class EventStats:
    """Totals since the bus started, and a window of samples for rates."""

    forwarded: int = 0
    stored: int = 0
    rejected: int = 0
    store_errors: int = 0
    sources: dict[str, SourceStats] = field(default_factory=dict)
    subscriptions: dict[str, int] = field(default_factory=dict)
    _samples: deque[tuple[float, int, dict[str, int]]] = field(
        default_factory=lambda: deque(maxlen=64)
    )

    def saw_many(
        self, sources: list[str], sequences: list[int], topics: list[str], now: float
    ) -> None:
        """Count envelopes captured together (parallel lists, in arrival order): one
        update per source rather than one per envelope."""
        if not sources:
            return
        last = dict(zip(sources, topics, strict=True))  # each source's last topic
        if len(last) == 1:
            counts, highest = {sources[0]: len(sources)}, {sources[0]: max(sequences)}
        else:
            counts, highest = Counter(sources), {}
            for source, sequence in zip(sources, sequences, strict=True):
                if sequence > highest.get(source, 0):
                    highest[source] = sequence
        for source, topic in last.items():
            self.saw_run(source, highest[source], topic, counts[source], now)

    def saw_run(self, source: str, last: int, topic: str, count: int, now: float) -> None:
        """Count ``count`` envelopes of ``source``, up to ``last`` (a message of several)."""
        entry = self.sources.get(source)
        if entry is None:
            entry = self.sources[source] = SourceStats()
        entry.events += count
        entry.last_sequence = max(entry.last_sequence, last)
        entry.last_topic = topic
        entry.last_seen = now
        self.forwarded += count

    def subscription(self, frame: bytes) -> None:
        """An XPUB (un)subscription message: ``\\x01prefix`` or ``\\x00prefix``."""
        if not frame or frame[0] not in (0, 1):
            return
        prefix = frame[1:].decode("utf-8", "replace")
        count = self.subscriptions.get(prefix, 0) + (1 if frame[0] == 1 else -1)
        if count > 0:
            self.subscriptions[prefix] = count
        else:
            self.subscriptions.pop(prefix, None)

    def sample(self, now: float | None = None) -> None:
        """Remember the totals now; rates are taken over the samples of the last 10 s."""
        now = time.monotonic() if now is None else now
        per_source = {name: s.events for name, s in list(self.sources.items())}
        self._samples.append((now, self.forwarded, per_source))

    def rates(self) -> tuple[float, dict[str, float]]:
        """Events per second overall and per source, over the sampling window."""
        if len(self._samples) < 2:
            return 0.0, {}
        end = self._samples[-1]
        start = next((s for s in self._samples if end[0] - s[0] <= _WINDOW_S), self._samples[0])
        span = end[0] - start[0]
        if span <= 0:
            return 0.0, {}
        per_source = {
            name: (count - start[2].get(name, 0)) / span for name, count in end[2].items()
        }
        return (end[1] - start[1]) / span, per_source

    def snapshot(self) -> dict[str, object]:
        """JSON for ``/api/events``."""
        total, per_source = self.rates()
        return {
            "forwarded": self.forwarded,
            "stored": self.stored,
            "rejected": self.rejected,
            "store_errors": self.store_errors,
            "rate_per_s": round(total, 1),
            "publishers": [
                {
                    "source": name,
                    "events": s.events,
                    "last_sequence": s.last_sequence,
                    "last_topic": s.last_topic,
                    "rate_per_s": round(per_source.get(name, 0.0), 1),
                }
                for name, s in sorted(list(self.sources.items()))
            ],
            "subscriptions": [
                {"prefix": prefix, "subscribers": n}
                for prefix, n in sorted(list(self.subscriptions.items()))
            ],
        }
