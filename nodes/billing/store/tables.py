"""The billing tables. Money is integer fen (``BigInteger``) and energy integer milli-kWh,
so nothing stored is a float.

The one rule that keeps billing runs from billing twice lives here, in the database, not
in a process: the partial unique index ``uq_billing_bills_account_month`` allows one bill
per account and month that is not voided, whichever run or node writes it first.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["allocations", "bills", "metadata", "payments", "run_accounts", "runs", "tariffs"]

metadata = sa.MetaData()

_STAMP = sa.DateTime(timezone=True)

tariffs = sa.Table(
    "billing_tariffs",
    metadata,
    sa.Column("tariff_id", sa.String(128), primary_key=True),
    sa.Column("effective_from", sa.Date, primary_key=True),
    # tariff_to_dict form: decimal strings, so the stored version prices exactly.
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("stored_at", _STAMP, nullable=False),
)

runs = sa.Table(
    "billing_runs",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("period_start", _STAMP, nullable=False),
    sa.Column("period_end", _STAMP, nullable=False),
    # sha256 of the parameters: a repeated run_id must carry the same ones.
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
    sa.Column("lease_until", _STAMP, nullable=True),
    sa.Column("created_at", _STAMP, nullable=False),
    sa.Column("started_at", _STAMP, nullable=True),
    sa.Column("finished_at", _STAMP, nullable=True),
)

run_accounts = sa.Table(
    "billing_run_accounts",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("account_id", sa.String(128), primary_key=True),
    # pending | billed | skipped | failed
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("retriable", sa.Boolean, nullable=False),
    sa.Column("bill_id", sa.String(64), nullable=True),
    sa.Index("ix_billing_run_accounts_state", "run_id", "state"),
)

bills = sa.Table(
    "billing_bills",
    metadata,
    sa.Column("bill_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(128), nullable=False),
    sa.Column("customer_class", sa.String(32), nullable=False),
    sa.Column("tariff_id", sa.String(128), nullable=False),
    # "2026-10": the month the period lies in; one live bill per account and month.
    sa.Column("bill_month", sa.String(7), nullable=False),
    sa.Column("period_start", _STAMP, nullable=False),
    sa.Column("period_end", _STAMP, nullable=False),
    # draft | issued | partially_paid | paid | voided; overdue is derived (due date passed)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total_fen", sa.BigInteger, nullable=False),
    sa.Column("paid_fen", sa.BigInteger, nullable=False),
    sa.Column("kwh_milli", sa.BigInteger, nullable=False),
    sa.Column("determinants", sa.JSON, nullable=False),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(128), nullable=True),
    sa.Column("created_at", _STAMP, nullable=False),
    sa.Column("issued_at", _STAMP, nullable=True),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("paid_at", _STAMP, nullable=True),
    sa.Column("voided_at", _STAMP, nullable=True),
    sa.Column("void_reason", sa.Text, nullable=True),
    sa.Column("replaces_bill_id", sa.String(64), nullable=True),
    sa.Index(
        "uq_billing_bills_account_month",
        "account_id",
        "bill_month",
        unique=True,
        sqlite_where=sa.text("status != 'voided'"),
        postgresql_where=sa.text("status != 'voided'"),
    ),
    sa.Index("ix_billing_bills_account", "account_id", "period_start"),
    sa.Index("ix_billing_bills_run", "run_id"),
)

payments = sa.Table(
    "billing_payments",
    metadata,
    sa.Column("payment_id", sa.String(128), primary_key=True),
    sa.Column("account_id", sa.String(128), nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("unallocated_fen", sa.BigInteger, nullable=False),
    sa.Column("paid_at", _STAMP, nullable=True),
    sa.Column("applied_at", _STAMP, nullable=False),
    sa.Column("released_at", _STAMP, nullable=True),
    sa.Column("release_reason", sa.Text, nullable=True),
    sa.Index("ix_billing_payments_account", "account_id"),
)

allocations = sa.Table(
    "billing_allocations",
    metadata,
    sa.Column("allocation_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.String(128), nullable=False),
    sa.Column("bill_id", sa.String(64), nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("applied_at", _STAMP, nullable=False),
    sa.Column("released_at", _STAMP, nullable=True),
    sa.Index("ix_billing_allocations_payment", "payment_id"),
    sa.Index("ix_billing_allocations_bill", "bill_id"),
)
