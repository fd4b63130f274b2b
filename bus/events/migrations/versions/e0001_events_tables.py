"""Event store tables: the envelope log and each source's sequence marks.

Revision ID: e0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events_log",
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("published_us", sa.BigInteger, nullable=False),
        sa.Column("stored_ms", sa.BigInteger, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_events_log_stored_ms", "events_log", ["stored_ms"])
    op.create_table(
        "events_sources",
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("latest_sequence", sa.BigInteger, nullable=False),
        sa.Column("earliest_sequence", sa.BigInteger, nullable=False),
        sa.Column("latest_published_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("events_sources")
    op.drop_index("ix_events_log_stored_ms", "events_log")
    op.drop_table("events_log")
