"""Meter data quality per gateway (serial line), from the metering nodes' poll reports.

The metering node that owns a line publishes ``metering.gateway.quality_reported`` for
every poll it stores (meters due and answered, values stored and estimated, failed reads
by kind, last good read). The bus stores those events like any other; its events side
reads the new ones from the store and hands them here as :class:`PollReport` (monitoring
imports no event code). :class:`GatewayQualityBook` keeps them for a while and sums them
per gateway over a window, by when the bus stored them, so a node's clock does not move
the window, a restarted bus rebuilds it from the store, and every bus sharing one
database shows the same figures.

>>> book = GatewayQualityBook(keep_s=3600)
>>> book.add([PollReport(key=("metering-1", 1), seen_at=100.0, node="metering-1",
...                      gateway="gw:1", interval_end=90.0, expected=8, received=6,
...                      stored=8, estimated=2, failures={"timeout": 4}, last_good=95.0)])
>>> q = book.summary(window_s=60, now=120.0)[0]
>>> (q.gateway, q.received_share, q.estimated_share, q.failures)
('gw:1', 0.75, 0.25, {'timeout': 4})
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from powerbus.monitoring.alerts import Alert
from powerbus.monitoring.rules import AlertKind, AlertRule

__all__ = [
    "DEFAULT_THRESHOLD",
    "QUALITY_WINDOW",
    "GatewayQuality",
    "GatewayQualityBook",
    "PollReport",
    "QualityFeed",
    "follow",
    "quality_json",
    "quality_keep_s",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PollReport:
    """One stored poll of one line. Times are epoch seconds."""

    key: tuple[str, int]
    """(source, sequence) of the event: the same event read twice counts once."""
    seen_at: float
    """When the bus stored the event."""
    node: str
    gateway: str
    interval_end: float
    expected: int
    received: int
    stored: int
    estimated: int
    failures: Mapping[str, int] = field(default_factory=dict)
    """Failed read attempts by kind (``timeout``, ``exception``, ``checksum``, ``garbage``,
    ``truncated``, ``unreachable``)."""
    last_good: float | None = None


QualityFeed = Callable[[], list[PollReport]]
"""Blocking: the reports stored since the previous call (the bus's events side)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayQuality:
    """One gateway over a window."""

    gateway: str
    node: str
    """The instance that reported its latest poll (the line's owner)."""
    polls: int
    expected: int
    received: int
    stored: int
    estimated: int
    failures: dict[str, int]
    last_good: float | None
    last_report: float

    @property
    def received_share(self) -> float | None:
        """Readings received of those expected; None when nothing was due."""
        return self.received / self.expected if self.expected else None

    @property
    def estimated_share(self) -> float | None:
        """Stored values that VEE estimated; None when nothing was stored."""
        return self.estimated / self.stored if self.stored else None

    def as_json(self) -> dict[str, object]:
        return {
            "gateway": self.gateway,
            "node": self.node,
            "polls": self.polls,
            "expected": self.expected,
            "received": self.received,
            "received_share": _round(self.received_share),
            "stored": self.stored,
            "estimated": self.estimated,
            "estimated_share": _round(self.estimated_share),
            "failures": dict(sorted(self.failures.items())),
            "failed_reads": sum(self.failures.values()),
            "last_good_read": _iso(self.last_good),
            "last_report": _iso(self.last_report),
        }


class GatewayQualityBook:
    """Poll reports of the last ``keep_s`` seconds; the tick adds, readers summarise
    (a lock: the API's thread and the tick may meet)."""

    def __init__(self, *, keep_s: float) -> None:
        self.keep_s = keep_s
        self._reports: dict[tuple[str, int], PollReport] = {}
        self._lock = threading.Lock()

    def add(self, reports: Iterable[PollReport]) -> None:
        with self._lock:
            for report in reports:
                self._reports[report.key] = report

    def prune(self, now: float) -> None:
        """Forget reports stored more than ``keep_s`` ago."""
        cutoff = now - self.keep_s
        with self._lock:
            for key in [k for k, r in self._reports.items() if r.seen_at < cutoff]:
                del self._reports[key]

    def summary(self, *, window_s: float, now: float) -> list[GatewayQuality]:
        """Every gateway reported within ``window_s``, by address."""
        cutoff = now - window_s
        by_gateway: dict[str, list[PollReport]] = {}
        with self._lock:
            for report in self._reports.values():
                if report.seen_at >= cutoff:
                    by_gateway.setdefault(report.gateway, []).append(report)
        return [_sum(gateway, by_gateway[gateway]) for gateway in sorted(by_gateway)]


DEFAULT_THRESHOLD = 0.95
"""The received share a gateway is held to when no ``gateway_quality`` rule is set."""


QUALITY_WINDOW = timedelta(hours=1)
"""The gateway quality panel's default window (``/api/metering/quality?window=``)."""


def quality_keep_s(rules: Iterable[AlertRule]) -> float:
    """How long a :class:`GatewayQualityBook` keeps reports: the longest window asked of
    it (the panel's hour, a ``gateway_quality`` rule's), and a minute more."""
    windows = [r.window for r in rules if r.kind is AlertKind.GATEWAY_QUALITY]
    return max([QUALITY_WINDOW, *windows]).total_seconds() + 60


def quality_json(
    book: GatewayQualityBook,
    *,
    rules: Iterable[AlertRule],
    alerts: Iterable[Alert],
    window_s: float | None,
    now: float,
) -> dict[str, object]:
    """Gateways as the panel shows them, over ``window_s`` (None: the first
    ``gateway_quality`` rule's window, else an hour; at most what the book keeps) against
    that rule's threshold: ``status`` is ``low`` below it, ``idle`` when nothing was
    due, else ``ok``; ``alert`` the active alert's message."""
    chosen = [r for r in rules if r.kind is AlertKind.GATEWAY_QUALITY]
    rule = chosen[0] if chosen else None
    if window_s is None:
        window_s = (rule.window if rule is not None else QUALITY_WINDOW).total_seconds()
    window_s = min(window_s, book.keep_s)
    gateways = book.summary(window_s=window_s, now=now)
    threshold = rule.threshold if rule is not None else DEFAULT_THRESHOLD
    raised = {a.subject: a.message for a in alerts if a.kind is AlertKind.GATEWAY_QUALITY}
    rows = []
    for q in gateways:
        share = q.received_share
        status = "idle" if share is None else "low" if share < threshold else "ok"
        rows.append({**q.as_json(), "status": status, "alert": raised.get(q.gateway)})
    return {
        "window_s": window_s,
        "threshold": threshold,
        "rule": rule.name if rule is not None else None,
        "gateways": rows,
    }


async def follow(
    feed: QualityFeed, book: GatewayQualityBook, *, every_s: float, clock: Callable[[], float]
) -> None:
    """Add what ``feed`` has every ``every_s`` seconds, in a thread (it reads the
    database), until cancelled; a failed read is logged and tried again next round."""
    while True:
        try:
            book.add(await asyncio.to_thread(feed))
            book.prune(clock())
        except Exception:
            log.exception("monitoring: reading gateway quality reports failed")
        await asyncio.sleep(every_s)


def _sum(gateway: str, reports: list[PollReport]) -> GatewayQuality:
    reports.sort(key=lambda r: (r.seen_at, r.interval_end))
    failures: dict[str, int] = {}
    for report in reports:
        for kind, count in report.failures.items():
            failures[kind] = failures.get(kind, 0) + count
    good = [r.last_good for r in reports if r.last_good is not None]
    return GatewayQuality(
        gateway=gateway,
        node=reports[-1].node,
        polls=len(reports),
        expected=sum(r.expected for r in reports),
        received=sum(r.received for r in reports),
        stored=sum(r.stored for r in reports),
        estimated=sum(r.estimated for r in reports),
        failures=failures,
        last_good=max(good) if good else None,
        last_report=reports[-1].seen_at,
    )


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
