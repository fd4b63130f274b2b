"""Payment tables: payments, reversals, journal transactions and entries, reports; the
journal made append-only by triggers.

Revision ID: p0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_When = sa.DateTime(timezone=True)

# Entries are immutable: a correction is a reversing transaction, never an UPDATE.
_SQLITE_GUARDS = [
    f"CREATE TRIGGER {table}_{verb}_forbidden BEFORE {verb.upper()} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table in ("pay_entries", "pay_transactions")
    for verb in ("update", "delete")
]
_PG_GUARDS = [
    "CREATE FUNCTION pay_append_only() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql",
    *(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION pay_append_only()"
        for table in ("pay_entries", "pay_transactions")
    ),
]


def upgrade() -> None:
    op.create_table(
        "pay_payments",
        sa.Column("payment_id", sa.String(32), primary_key=True),
        sa.Column("seq", _Id, nullable=False, unique=True),
        sa.Column("bank_code", sa.String(8), nullable=False),
        sa.Column("bank_txn_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False, index=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paid_at", sa.DateTime, nullable=False, index=True),
        sa.Column("settlement_date", sa.Date, nullable=True, index=True),
        sa.Column("posted_at", _When, nullable=False),
        sa.Column("bill_ids", sa.String(800), nullable=False),
        sa.Column("application_pending", sa.Boolean, nullable=False),
        sa.Column("allocations", sa.LargeBinary, nullable=False),
        sa.Column("unallocated", sa.BigInteger, nullable=False),
        sa.Column("unapply_pending", sa.Boolean, nullable=False),
        sa.Column("reversal_txn_id", sa.String(64), nullable=False),
        sa.Column("reversed_at", _When, nullable=True),
        sa.Column("reversal_reason", sa.String(200), nullable=False),
        sa.UniqueConstraint("bank_code", "bank_txn_id", name="uq_pay_payments_bank_txn"),
    )
    op.create_table(
        "pay_reversals",
        sa.Column("bank_code", sa.String(8), primary_key=True),
        sa.Column("reversal_txn_id", sa.String(64), primary_key=True),
        sa.Column("original_txn_id", sa.String(64), nullable=False, index=True),
        sa.Column("payment_id", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", _When, nullable=False),
    )
    op.create_table(
        "pay_transactions",
        sa.Column("txn_id", _Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("payment_id", sa.String(32), nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("memo", sa.String(200), nullable=False),
        sa.Column("created_at", _When, nullable=False),
    )
    op.create_table(
        "pay_entries",
        sa.Column("entry_id", _Id, primary_key=True, autoincrement=True),
        sa.Column(
            "txn_id",
            _Id,
            sa.ForeignKey("pay_transactions.txn_id"),
            nullable=False,
            index=True,
        ),
        sa.Column("account", sa.String(96), nullable=False, index=True),
        sa.Column("debit", sa.BigInteger, nullable=False),
        sa.Column("credit", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0)", name="one_side"
        ),
    )
    op.create_table(
        "pay_reports",
        sa.Column("bank_code", sa.String(8), primary_key=True),
        sa.Column("settlement_date", sa.Date, primary_key=True),
        sa.Column("generated_at", _When, nullable=False),
        sa.Column("report_json", sa.Text, nullable=False),
        sa.Column("report_proto", sa.LargeBinary, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": _SQLITE_GUARDS, "postgresql": _PG_GUARDS}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("pay_entries", "pay_transactions"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pay_append_only()")
    for table in ("pay_reports", "pay_entries", "pay_transactions", "pay_reversals"):
        op.drop_table(table)
    op.drop_table("pay_payments")
