"""Billing tables: stored tariffs, runs and their accounts, bills, payments, allocations.

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


def upgrade() -> None:
    op.create_table(
        "billing_tariffs",
        sa.Column("tariff_id", sa.String(128), primary_key=True),
        sa.Column("effective_from", sa.Date, primary_key=True),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "billing_runs",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("listed", sa.Boolean, nullable=False),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("accounts_total", sa.Integer, nullable=False),
        sa.Column("bills_issued", sa.Integer, nullable=False),
        sa.Column("accounts_skipped", sa.Integer, nullable=False),
        sa.Column("accounts_failed", sa.Integer, nullable=False),
        sa.Column("total_billed_fen", sa.BigInteger, nullable=False),
        sa.Column("total_kwh_milli", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "billing_run_accounts",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("retriable", sa.Boolean, nullable=False),
        sa.Column("bill_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_billing_run_accounts_state", "billing_run_accounts", ["run_id", "state"])
    op.create_table(
        "billing_bills",
        sa.Column("bill_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("customer_class", sa.String(32), nullable=False),
        sa.Column("tariff_id", sa.String(128), nullable=False),
        sa.Column("bill_month", sa.String(7), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_fen", sa.BigInteger, nullable=False),
        sa.Column("paid_fen", sa.BigInteger, nullable=False),
        sa.Column("kwh_milli", sa.BigInteger, nullable=False),
        sa.Column("determinants", sa.JSON, nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text, nullable=True),
        sa.Column("replaces_bill_id", sa.String(64), nullable=True),
    )
    op.create_index(
        "uq_billing_bills_account_month",
        "billing_bills",
        ["account_id", "bill_month"],
        unique=True,
        sqlite_where=sa.text("status != 'voided'"),
        postgresql_where=sa.text("status != 'voided'"),
    )
    op.create_index("ix_billing_bills_account", "billing_bills", ["account_id", "period_start"])
    op.create_index("ix_billing_bills_run", "billing_bills", ["run_id"])
    op.create_table(
        "billing_payments",
        sa.Column("payment_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("unallocated_fen", sa.BigInteger, nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_billing_payments_account", "billing_payments", ["account_id"])
    op.create_table(
        "billing_allocations",
        sa.Column("allocation_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("payment_id", sa.String(128), nullable=False),
        sa.Column("bill_id", sa.String(64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_billing_allocations_payment", "billing_allocations", ["payment_id"])
    op.create_index("ix_billing_allocations_bill", "billing_allocations", ["bill_id"])


def downgrade() -> None:
    op.drop_table("billing_allocations")
    op.drop_table("billing_payments")
    op.drop_table("billing_bills")
    op.drop_table("billing_run_accounts")
    op.drop_table("billing_runs")
    op.drop_table("billing_tariffs")
