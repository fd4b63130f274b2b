"""The monitoring tables, as SQLAlchemy Core: rollups of traffic and the alert log.

Times are whole seconds since the epoch (UTC) in ``bucket_start``, so windows compare
and group as plain integers on every database.

>>> sorted(t.name for t in tables.sorted_tables)
['monitoring_alerts', 'monitoring_rollup_state', 'monitoring_rollups']
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["alerts", "rollup_state", "rollups", "tables"]

tables = sa.MetaData()

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

rollups = sa.Table(
    "monitoring_rollups",
    tables,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("resolution_s", sa.Integer, nullable=False),
    sa.Column("bucket_start", sa.BigInteger, nullable=False),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("method", sa.String(200), nullable=False),
    sa.Column("node_id", sa.String(128), nullable=False),
    sa.Column("caller", sa.String(160), nullable=False),
    sa.Column("code", sa.String(32), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
    sa.Column("buckets", sa.JSON, nullable=False),
    sa.Column("bytes_in", sa.BigInteger, nullable=False),
    sa.Column("bytes_out", sa.BigInteger, nullable=False),
    sa.Column("writer", sa.String(64), nullable=False),
    sa.Index("ix_monitoring_rollups_time", "resolution_s", "bucket_start"),
)
"""Traffic per key and window: 10 s rows written by each bus, 1 min and 1 h compacted."""

rollup_state = sa.Table(
    "monitoring_rollup_state",
    tables,
    sa.Column("resolution_s", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("compacted_until", sa.BigInteger, nullable=False),
)
"""Per coarse resolution: finer rows before ``compacted_until`` have been rolled into it."""

alerts = sa.Table(
    "monitoring_alerts",
    tables,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("writer", sa.String(64), nullable=False),
    sa.Index("ix_monitoring_alerts_raised_at", "raised_at"),
)
"""Every alert raised, and when it cleared."""
