"""Data quality of one poll of one line, as the ``metering.gateway.quality_reported`` event.

The poller counts every failed read attempt by why it failed (:class:`ReadFailure`,
mapped once here from the adapters' typed errors), and after the poll's batch is built
:func:`quality_report` says what the line got: meters due and meters that answered,
values stored and how many VEE estimated, and when a meter behind it last answered.
Monitoring sums these per gateway over a window (docs/monitoring.md, "Meter data
quality"); the event travels through the outbox in the transaction that stores the poll,
so a report is neither lost nor sent for a poll that was not stored.

>>> from powerbus.adapters.meters import FrameError, FrameProblem, MeterTimeout
>>> failures = ReadFailures()
>>> failures.add(MeterTimeout(meter="M1", gateway="gw:1", problem="no reply"))
>>> failures.add(FrameError(meter="M2", gateway="gw:1", reason=FrameProblem.GARBAGE, problem="x"))
>>> failures.add(MeterTimeout(meter="M1", gateway="gw:1", problem="no reply"))
>>> sorted((kind.value, n) for kind, n in failures.counts.items())
[('garbage', 1), ('timeout', 2)]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import Enum

from google.protobuf.duration_pb2 import Duration

from powerbus.adapters.meters import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    GatewayUnreachable,
    MeterError,
    MeterTimeout,
)
from powerbus.events.v1 import events_pb2
from powerbus.nodes.metering.convert import time_to_proto

__all__ = ["ReadFailure", "ReadFailures", "quality_report"]


class ReadFailure(str, Enum):
    """Why a read failed; the member names are ``events.v1.ReadFailureKind`` without
    its prefix."""

    TIMEOUT = "timeout"
    EXCEPTION = "exception"
    CHECKSUM = "checksum"
    GARBAGE = "garbage"
    TRUNCATED = "truncated"
    UNREACHABLE = "unreachable"

    @classmethod
    def of(cls, error: MeterError) -> ReadFailure:
        """The kind of an acquisition error."""
        if isinstance(error, MeterTimeout):
            return cls.TIMEOUT
        if isinstance(error, DeviceRejected):
            return cls.EXCEPTION
        if isinstance(error, FrameError):
            return _FRAME.get(error.reason, cls.TRUNCATED)
        if isinstance(error, GatewayUnreachable):
            return cls.UNREACHABLE
        # MeterError has no other subclass today; a new one is at least not lost
        return cls.TRUNCATED

    @property
    def proto(self) -> events_pb2.ReadFailureKind.ValueType:
        return events_pb2.ReadFailureKind.Value(f"READ_FAILURE_KIND_{self.name}")


_FRAME = {
    FrameProblem.GARBAGE: ReadFailure.GARBAGE,
    FrameProblem.CHECKSUM: ReadFailure.CHECKSUM,
    FrameProblem.TRUNCATED: ReadFailure.TRUNCATED,
    # a reply to another request is a frame the line could not use, as a cut one is
    FrameProblem.MISMATCH: ReadFailure.TRUNCATED,
}


class ReadFailures:
    """Failed read attempts of one poll by kind (first reads and retries alike)."""

    def __init__(self) -> None:
        self.counts: Counter[ReadFailure] = Counter()

    def add(self, error: MeterError) -> None:
        self.counts[ReadFailure.of(error)] += 1


def quality_report(
    *,
    gateway: str,
    end: datetime,
    interval: timedelta,
    expected: int,
    received: int,
    stored: int,
    estimated: int,
    failures: ReadFailures,
    last_good: Iterable[datetime | None],
) -> events_pb2.GatewayQualityReported:
    """The event for one poll of ``gateway`` for the interval ending at ``end``;
    ``last_good`` are the times its meters last answered (None: never)."""
    report = events_pb2.GatewayQualityReported(
        gateway=gateway,
        interval_end=time_to_proto(end),
        interval=Duration(seconds=int(interval.total_seconds())),
        meters_expected=expected,
        meters_received=received,
        values_stored=stored,
        values_estimated=estimated,
        failures=[
            events_pb2.ReadFailureCount(kind=kind.proto, count=count)
            for kind, count in sorted(failures.counts.items(), key=lambda kv: kv[0].name)
        ],
    )
    latest = max((t for t in last_good if t is not None), default=None)
    if latest is not None:
        report.last_good_read.CopyFrom(time_to_proto(latest))
    return report
