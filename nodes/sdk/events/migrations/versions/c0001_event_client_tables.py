"""SDK event tables: the transactional outbox, its sequence counters, subscriber positions.

Revision ID: c0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events_outbox",
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "events_outbox_sources",
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "events_positions",
        sa.Column("subscriber", sa.String(128), primary_key=True),
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("events_positions")
    op.drop_table("events_outbox_sources")
    op.drop_table("events_outbox")
