"""Small conversions shared by the stores: UTC timestamps and proto enum names."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["from_timestamp", "timestamp", "utc"]


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp of ``value``; ``None`` stays unset."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(utc(value))
    return stamp


def from_timestamp(stamp: Timestamp, *, default: datetime) -> datetime:
    """The aware datetime of a set Timestamp, else ``default``."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return default
    return stamp.ToDatetime(tzinfo=timezone.utc)
