"""Metering node tables: configured meters, end-device events, idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metering_meters",
        sa.Column("meter_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("channel", sa.Integer, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("connect_state", sa.SmallInteger, nullable=False),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("address", "channel", name="uq_metering_meters_address"),
    )
    op.create_index("ix_metering_meters_account", "metering_meters", ["account_id"])
    op.create_table(
        "metering_device_events",
        sa.Column("mrid", sa.String(200), primary_key=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_metering_device_events_time", "metering_device_events", ["created_at", "mrid"]
    )
    op.create_table(
        "metering_requests",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("message_id", sa.String(200), primary_key=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_metering_requests_created", "metering_requests", ["created_at"])


def downgrade() -> None:
    for name in ("metering_requests", "metering_device_events", "metering_meters"):
        op.drop_table(name)
