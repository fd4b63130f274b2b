"""The metering nodes' poll reports, read from the event store for monitoring.

Why from the store and not from the forwarder's capture loop: the store holds what every
bus sharing the database forwarded, survives a restart (the first read reaches back over
the whole window), and reading it costs the forwarder's hot loop nothing. The reports
arrive once per line and poll (every 15 min by default), so a read every few seconds is a
handful of rows; finding them walks the store's time index over the rows stored since
the previous read (every 5 s) plus the overlap, whatever their topic (an index on the
topic would put its cost on every event's insert instead).

Rows are read by (stored_ms, source, sequence). A bus stamps a batch before it commits
it, so a batch another bus commits a little later can carry an earlier stamp: each read
starts ``overlap`` before the newest row seen and drops the events already read.

>>> feed = GatewayQualityFeed(lambda: None, since_s=3600)
>>> feed()
[]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from google.protobuf.message import DecodeError

from powerbus.bus.events.store import Clock, EventStore, TopicRow
from powerbus.events.v1 import events_pb2
from powerbus.monitoring.gateway_quality import PollReport

__all__ = ["QUALITY_TOPIC", "GatewayQualityFeed", "poll_report"]

log = logging.getLogger(__name__)

QUALITY_TOPIC = "metering.gateway.quality_reported"
_PAGE = 2_000
_MAX_PAGES = 50
_OVERLAP_MS = 5_000


class GatewayQualityFeed:
    """Call it (blocking) for the reports stored since the previous call."""

    def __init__(
        self,
        store: Callable[[], EventStore | None],
        *,
        since_s: float,
        overlap_ms: int = _OVERLAP_MS,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._overlap_ms = overlap_ms
        self._newest_ms = int((clock() - since_s) * 1000)
        self._seen: dict[tuple[str, int], int] = {}

    def __call__(self) -> list[PollReport]:
        store = self._store()
        if store is None:
            return []
        after: tuple[int, str, int] = (self._newest_ms - self._overlap_ms, "", 0)
        reports: list[PollReport] = []
        for _ in range(_MAX_PAGES):  # bounded: what is left is read next time
            rows = store.stored_since(QUALITY_TOPIC, after, limit=_PAGE)
            reports += self._new(rows)
            if len(rows) < _PAGE:
                break
            after = rows[-1].key
        horizon = self._newest_ms - 2 * self._overlap_ms
        self._seen = {k: ms for k, ms in self._seen.items() if ms >= horizon}
        return reports

    def _new(self, rows: list[TopicRow]) -> list[PollReport]:
        reports = []
        for row in rows:
            key = (row.source, row.sequence)
            self._newest_ms = max(self._newest_ms, row.stored_ms)
            if key in self._seen:
                continue
            self._seen[key] = row.stored_ms
            report = poll_report(row)
            if report is not None:
                reports.append(report)
        return reports


def poll_report(row: TopicRow) -> PollReport | None:
    """The report an envelope carries; None (logged) when it carries none."""
    payload = events_pb2.GatewayQualityReported()
    try:
        envelope = events_pb2.Envelope.FromString(row.envelope)
        if not envelope.payload.Unpack(payload):
            raise DecodeError(f"payload is {envelope.payload.type_url}")
    except DecodeError as error:
        log.warning("events: %s #%d is no quality report: %s", row.source, row.sequence, error)
        return None
    return PollReport(
        key=(row.source, row.sequence),
        seen_at=row.stored_ms / 1000,
        node=row.source,
        gateway=payload.gateway,
        interval_end=payload.interval_end.ToMicroseconds() / 1e6,
        expected=payload.meters_expected,
        received=payload.meters_received,
        stored=payload.values_stored,
        estimated=payload.values_estimated,
        failures={
            events_pb2.ReadFailureKind.Name(f.kind).removeprefix("READ_FAILURE_KIND_").lower(): (
                f.count
            )
            for f in payload.failures
        },
        last_good=(
            payload.last_good_read.ToMicroseconds() / 1e6
            if payload.HasField("last_good_read")
            else None
        ),
    )
