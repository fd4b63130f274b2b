"""Metering tables: intervals (monthly partitions on PostgreSQL), their history, registers,
reading types, line leases and instances.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_VALUES = """
    wh BIGINT, raw_wh BIGINT, quality SMALLINT NOT NULL, rule SMALLINT NOT NULL,
    method SMALLINT NOT NULL, detail TEXT, write_id BIGINT NOT NULL
"""


def _value_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("wh", sa.BigInteger, nullable=True),
        sa.Column("raw_wh", sa.BigInteger, nullable=True),
        sa.Column("quality", sa.SmallInteger, nullable=False),
        sa.Column("rule", sa.SmallInteger, nullable=False),
        sa.Column("method", sa.SmallInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("write_id", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Declarative range partitioning has no portable DDL; partitions come later,
        # one per UTC month, created by the writer as data reaches them. Meter ids
        # compare bytewise ("C"): cheaper index inserts than a locale's collation, and
        # the same order SQLite gives, so pages read alike on both.
        op.execute(
            f"""CREATE TABLE metering_intervals (
                meter_id VARCHAR(64) COLLATE "C" NOT NULL, reading_type SMALLINT NOT NULL,
                end_at TIMESTAMPTZ NOT NULL, {_VALUES},
                PRIMARY KEY (meter_id, reading_type, end_at)
            ) PARTITION BY RANGE (end_at)"""
        )
    else:
        op.create_table(
            "metering_intervals",
            sa.Column("meter_id", sa.String(64), primary_key=True),
            sa.Column("reading_type", sa.SmallInteger, primary_key=True),
            sa.Column("end_at", sa.DateTime(timezone=True), primary_key=True),
            *_value_columns(),
        )
    op.create_table(
        "metering_interval_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("reading_type", sa.SmallInteger, nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        *_value_columns(),
        sa.Column("superseded_by", sa.BigInteger, nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_metering_interval_history_key",
        "metering_interval_history",
        ["meter_id", "reading_type", "end_at"],
    )
    op.create_table(
        "metering_registers",
        sa.Column("meter_id", sa.String(64), primary_key=True),
        sa.Column("reading_type", sa.SmallInteger, primary_key=True),
        sa.Column("read_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("quality", sa.SmallInteger, nullable=False),
        sa.Column("rule", sa.SmallInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("write_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "metering_reading_types",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mrid", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "metering_line_leases",
        sa.Column("gateway", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "metering_instances",
        sa.Column("instance_id", sa.String(128), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "metering_instances",
        "metering_line_leases",
        "metering_reading_types",
        "metering_registers",
        "metering_interval_history",
        "metering_intervals",
    ):
        op.drop_table(name)
