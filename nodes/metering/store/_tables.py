"""The metering store's tables, as the running code sees them (migrations/ creates them).

- ``metering_intervals``: the current value of each interval, one row per
  (meter, reading type, end): that key makes storing the same interval again a no-op.
  On PostgreSQL it is partitioned by month of ``end_at`` (UTC months); partitions are
  created as writes reach them (:mod:`._partitions`).
- ``metering_interval_history``: values that were replaced (an estimate superseded by a
  backfilled measurement), with the write that replaced them: nothing is ever lost.
- ``metering_registers``: cumulative register reads, one per (meter, type, time).
- ``metering_reading_types``: CIM ReadingType mRIDs and their small ids, so the wide
  18-part code is not repeated in every row and every index entry.
- ``metering_line_leases`` and ``metering_instances``: line ownership
  (:mod:`powerbus.nodes.metering.ownership`), here so that a write checks its fencing
  token in the same transaction and the same database as the insert.
- ``metering_meters``, ``metering_device_events``, ``metering_requests``: the node's
  configured meters (the ``Meter`` message in ``body``, with the columns it is searched
  and updated by), end-device events, and the idempotency keys of requests.

Quality, rule and method are stored as the proto's enum numbers, which never change.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from powerbus.bus.kernel.database import UtcDateTime

__all__ = [
    "INTERVAL_COLUMNS",
    "UtcDateTime",
    "device_events",
    "history",
    "instances",
    "intervals",
    "leases",
    "meters",
    "reading_types",
    "registers",
    "requests",
    "tables",
]


tables = sa.MetaData()


def _value_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("wh", sa.BigInteger, nullable=True),
        sa.Column("raw_wh", sa.BigInteger, nullable=True),
        sa.Column("quality", sa.SmallInteger, nullable=False),
        sa.Column("rule", sa.SmallInteger, nullable=False),
        sa.Column("method", sa.SmallInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("write_id", sa.BigInteger, nullable=False),
    ]


intervals = sa.Table(
    "metering_intervals",
    tables,
    sa.Column("meter_id", sa.String(64), primary_key=True),
    sa.Column("reading_type", sa.SmallInteger, primary_key=True),
    sa.Column("end_at", UtcDateTime, primary_key=True),
    *_value_columns(),
)

INTERVAL_COLUMNS = tuple(c.name for c in intervals.columns)
"""Column order of ``metering_intervals``, which COPY writes in."""

history = sa.Table(
    "metering_interval_history",
    tables,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("meter_id", sa.String(64), nullable=False),
    sa.Column("reading_type", sa.SmallInteger, nullable=False),
    sa.Column("end_at", UtcDateTime, nullable=False),
    *_value_columns(),
    sa.Column("superseded_by", sa.BigInteger, nullable=False),
    sa.Column("superseded_at", UtcDateTime, nullable=False),
    sa.Index("ix_metering_interval_history_key", "meter_id", "reading_type", "end_at"),
)

registers = sa.Table(
    "metering_registers",
    tables,
    sa.Column("meter_id", sa.String(64), primary_key=True),
    sa.Column("reading_type", sa.SmallInteger, primary_key=True),
    sa.Column("read_at", UtcDateTime, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("quality", sa.SmallInteger, nullable=False),
    sa.Column("rule", sa.SmallInteger, nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("write_id", sa.BigInteger, nullable=False),
)

reading_types = sa.Table(
    "metering_reading_types",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("mrid", sa.String(64), nullable=False, unique=True),
)

leases = sa.Table(
    "metering_line_leases",
    tables,
    sa.Column("gateway", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=True),
    # Never reset, never deleted: the fencing token only grows.
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
)

instances = sa.Table(
    "metering_instances",
    tables,
    sa.Column("instance_id", sa.String(128), primary_key=True),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

meters = sa.Table(
    "metering_meters",
    tables,
    sa.Column("meter_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("channel", sa.Integer, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("connect_state", sa.SmallInteger, nullable=False),
    sa.Column("last_read_at", UtcDateTime, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
)

device_events = sa.Table(
    "metering_device_events",
    tables,
    sa.Column("mrid", sa.String(200), primary_key=True),
    sa.Column("meter_id", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("severity", sa.SmallInteger, nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
)

requests = sa.Table(
    "metering_requests",
    tables,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("message_id", sa.String(200), primary_key=True),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
