"""Operators' resolutions of reconciliation differences, one per report item.

Revision ID: p0002
Revises: p0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pay_resolutions",
        sa.Column("bank_code", sa.String(8), primary_key=True),
        sa.Column("settlement_date", sa.Date, primary_key=True),
        sa.Column("bank_txn_id", sa.String(64), primary_key=True),
        sa.Column("line_number", sa.Integer, primary_key=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_txn_ids", sa.String(200), nullable=False),
        sa.Column("payment_id", sa.String(32), nullable=False),
        sa.Column("written_off", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pay_resolutions")
