"""The payment node's tables: payments, reversals, the double-entry journal, reports and
operators' resolutions of their differences.

The journal is two tables: ``pay_transactions`` (one per business event: a collection,
its application to bills, a reversal, an operator's write-off) and ``pay_entries`` (its
debit and credit lines, fen, each line one side only). Rows of both are only ever
inserted; a correction is a new transaction with the opposite lines. Timestamps are UTC.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "entries",
    "payments",
    "reports",
    "resolutions",
    "reversals",
    "tables",
    "transactions",
]

tables = sa.MetaData()

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_When = sa.DateTime(timezone=True)

payments = sa.Table(
    "pay_payments",
    tables,
    sa.Column("payment_id", sa.String(32), primary_key=True),
    # Arrival order: the application loop applies pending payments in this order.
    sa.Column("seq", _Id, nullable=False, unique=True),
    sa.Column("bank_code", sa.String(8), nullable=False),
    sa.Column("bank_txn_id", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # Bank local time, naive, as the bank's statement states it.
    sa.Column("paid_at", sa.DateTime, nullable=False, index=True),
    sa.Column("settlement_date", sa.Date, nullable=True, index=True),
    sa.Column("posted_at", _When, nullable=False),
    sa.Column("bill_ids", sa.String(800), nullable=False, default=""),
    sa.Column("application_pending", sa.Boolean, nullable=False),
    # Serialized repeated billing.v1.PaymentAllocation, once billing answered.
    sa.Column("allocations", sa.LargeBinary, nullable=False, default=b""),
    sa.Column("unallocated", sa.BigInteger, nullable=False, default=0),
    # A reversed payment that billing had applied must be unapplied there too.
    sa.Column("unapply_pending", sa.Boolean, nullable=False, default=False),
    sa.Column("reversal_txn_id", sa.String(64), nullable=False, default=""),
    sa.Column("reversed_at", _When, nullable=True),
    sa.Column("reversal_reason", sa.String(200), nullable=False, default=""),
    # The idempotency key of PostPayment (payment.proto): never two payments per serial.
    sa.UniqueConstraint("bank_code", "bank_txn_id", name="uq_pay_payments_bank_txn"),
)

reversals = sa.Table(
    "pay_reversals",
    tables,
    sa.Column("bank_code", sa.String(8), primary_key=True),
    sa.Column("reversal_txn_id", sa.String(64), primary_key=True),
    # The reversed collection's serial; a reversal that arrived first blocks it.
    sa.Column("original_txn_id", sa.String(64), nullable=False, index=True),
    sa.Column("payment_id", sa.String(32), nullable=False, default=""),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", _When, nullable=False),
)

transactions = sa.Table(
    "pay_transactions",
    tables,
    sa.Column("txn_id", _Id, primary_key=True, autoincrement=True),
    # COLLECTION, APPLICATION, REVERSAL, WRITE_OFF, ...
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("payment_id", sa.String(32), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False, default=""),
    sa.Column("memo", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", _When, nullable=False),
)

entries = sa.Table(
    "pay_entries",
    tables,
    sa.Column("entry_id", _Id, primary_key=True, autoincrement=True),
    sa.Column("txn_id", _Id, sa.ForeignKey("pay_transactions.txn_id"), nullable=False, index=True),
    # e.g. "bank_clearing:0102", "receivable:3100000001" (see ledger.Chart).
    sa.Column("account", sa.String(96), nullable=False, index=True),
    sa.Column("debit", sa.BigInteger, nullable=False),
    sa.Column("credit", sa.BigInteger, nullable=False),
    sa.CheckConstraint("debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0)", name="one_side"),
)

reports = sa.Table(
    "pay_reports",
    tables,
    sa.Column("bank_code", sa.String(8), primary_key=True),
    sa.Column("settlement_date", sa.Date, primary_key=True),
    sa.Column("generated_at", _When, nullable=False),
    # report_to_json of powerbus.adapters.bank (the stored, audited form).
    sa.Column("report_json", sa.Text, nullable=False),
    # The serialized powerbus.payment.v1.ReconciliationReport returned to callers.
    sa.Column("report_proto", sa.LargeBinary, nullable=False),
)

resolutions = sa.Table(
    "pay_resolutions",
    tables,
    # The item: a report (bank, date) and, stable across reruns of the same statement,
    # its serial and statement line (0 for an item only the ledger has).
    sa.Column("bank_code", sa.String(8), primary_key=True),
    sa.Column("settlement_date", sa.Date, primary_key=True),
    sa.Column("bank_txn_id", sa.String(64), primary_key=True),
    sa.Column("line_number", sa.Integer, primary_key=True),
    sa.Column("category", sa.String(16), nullable=False),
    # POST, REVERSE, WRITE_OFF (adapters.bank.ResolutionAction).
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("operator", sa.String(64), nullable=False),
    sa.Column("resolved_at", _When, nullable=False),
    # The journal transactions written, comma-separated pay_transactions.txn_id.
    sa.Column("ledger_txn_ids", sa.String(200), nullable=False),
    sa.Column("payment_id", sa.String(32), nullable=False),
    sa.Column("written_off", sa.BigInteger, nullable=False),
)
