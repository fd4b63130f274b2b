"""Monitoring tables: traffic rollups, their compaction state and the alert log.

Revision ID: m0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitoring_rollups",
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
    )
    op.create_index(
        "ix_monitoring_rollups_time", "monitoring_rollups", ["resolution_s", "bucket_start"]
    )
    op.create_table(
        "monitoring_rollup_state",
        sa.Column("resolution_s", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("compacted_until", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "monitoring_alerts",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("writer", sa.String(64), nullable=False),
    )
    op.create_index("ix_monitoring_alerts_raised_at", "monitoring_alerts", ["raised_at"])


def downgrade() -> None:
    op.drop_table("monitoring_alerts")
    op.drop_table("monitoring_rollup_state")
    op.drop_table("monitoring_rollups")
