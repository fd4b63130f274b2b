"""Subscribers as the bus knows them: the positions they report, and their lag.

A subscriber sends ``ReportPosition`` every few seconds (per source, the last sequence it
handled). The bus keeps the latest report of each in memory — a report is cheap to lose,
the next one replaces it — and forgets subscribers silent for ``forget_after``. Lag is
computed when asked, against the store's latest sequence per source (shared by every bus
on one database), so a subscriber reporting to any bus is measured the same way.

>>> book = SubscriberBook(clock=lambda: 100.0)
>>> book.report("crm-1", prefixes=["metering."], positions={"meter-1": 40}, delivered=40)
>>> [(v.subscriber, v.source, v.lag) for v in book.lags({"meter-1": 45, "billing-1": 3})]
[('crm-1', 'meter-1', 5)]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["SourceLag", "SubscriberBook", "SubscriberReport"]

_RATE_WINDOW_S = 30.0


@dataclass(slots=True)
class SubscriberReport:
    """The latest report of one subscriber, and the one before it (for its rate)."""

    subscriber: str
    prefixes: tuple[str, ...]
    positions: dict[str, int]
    delivered: int
    reported_at: float
    rate_per_s: float = 0.0
    _first: tuple[float, int] = field(default=(0.0, 0))


@dataclass(frozen=True, slots=True)
class SourceLag:
    """How far one subscriber is behind one source."""

    subscriber: str
    source: str
    position: int
    latest: int
    lag: int


class SubscriberBook:
    """Latest position reports by subscriber name; thread-safe enough for the GIL (one
    dict assignment per report)."""

    def __init__(
        self, *, forget_after: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._reports: dict[str, SubscriberReport] = {}
        self._forget_after = forget_after
        self._clock = clock

    def report(
        self,
        subscriber: str,
        *,
        prefixes: Sequence[str],
        positions: Mapping[str, int],
        delivered: int,
    ) -> None:
        """Record ``subscriber``'s positions now; raises InvalidArgument without a name."""
        if not subscriber:
            raise InvalidArgument("subscriber", "must not be empty")
        now = self._clock()
        previous = self._reports.get(subscriber)
        first = (now, delivered)
        rate = 0.0
        if previous is not None and delivered >= previous._first[1]:
            # The rate over the reports of the last half minute: steadier than two reports.
            first = (
                previous._first
                if now - previous._first[0] <= _RATE_WINDOW_S
                else (
                    previous.reported_at,
                    previous.delivered,
                )
            )
            span = now - first[0]
            rate = (delivered - first[1]) / span if span > 0 else previous.rate_per_s
        self._reports[subscriber] = SubscriberReport(
            subscriber=subscriber,
            prefixes=tuple(prefixes),
            positions={source: int(seq) for source, seq in positions.items()},
            delivered=delivered,
            reported_at=now,
            rate_per_s=rate,
            _first=first,
        )

    def subscribers(self) -> list[SubscriberReport]:
        """Subscribers that reported recently, by name; the silent ones are forgotten."""
        now = self._clock()
        for name, entry in list(self._reports.items()):
            if now - entry.reported_at > self._forget_after:
                self._reports.pop(name, None)
        return sorted(self._reports.values(), key=lambda r: r.subscriber)

    def lags(self, latest: Mapping[str, int]) -> list[SourceLag]:
        """Per subscriber and source it has a position for, ``latest - position`` (never
        negative: a report can be newer than the ``latest`` read before it)."""
        out: list[SourceLag] = []
        for entry in self.subscribers():
            for source, position in sorted(entry.positions.items()):
                if source not in latest:
                    continue  # pruned or another database's source: nothing to measure
                top = latest[source]
                out.append(
                    SourceLag(entry.subscriber, source, position, top, max(0, top - position))
                )
        return out
