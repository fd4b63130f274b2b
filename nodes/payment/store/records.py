"""Records the payment store takes and returns: frozen values, fen as ``int``."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from powerbus.adapters.bank import LedgerEntry, PaymentStatus, ReverseOutcome

__all__ = [
    "PaymentRecord",
    "PostOutcome",
    "PostRequest",
    "ReversalRequest",
    "ReversalResult",
    "payment_id_of",
    "utc",
]


def payment_id_of(bank_code: str, bank_txn_id: str) -> str:
    """The payment id of a bank transaction: derived, so a retried post names the same one.

    >>> payment_id_of("0102", "B1")
    'P799a169d968ebda475bc4e7a'
    """
    digest = hashlib.sha256(f"{bank_code}\x00{bank_txn_id}".encode()).hexdigest()
    return "P" + digest[:24]


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRequest:
    """A payment to record (``PostPaymentRequest`` checked and converted)."""

    bank_code: str
    bank_txn_id: str
    account_id: str
    amount: int
    channel: str  # PaymentChannel value name, e.g. PAYMENT_CHANNEL_BANK_COUNTER
    paid_at: dt.datetime  # bank local time, naive
    settlement_date: dt.date | None = None
    bill_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentRecord:
    """A payment as stored."""

    payment_id: str
    seq: int
    bank_code: str
    bank_txn_id: str
    account_id: str
    amount: int
    channel: str
    status: PaymentStatus
    paid_at: dt.datetime
    settlement_date: dt.date | None
    posted_at: dt.datetime
    bill_ids: tuple[str, ...]
    application_pending: bool
    allocations: bytes
    unallocated: int
    unapply_pending: bool
    reversal_txn_id: str
    reversed_at: dt.datetime | None
    reversal_reason: str

    @classmethod
    def from_row(cls, row: Any) -> PaymentRecord:
        m = row._mapping
        return cls(
            payment_id=m["payment_id"],
            seq=m["seq"],
            bank_code=m["bank_code"],
            bank_txn_id=m["bank_txn_id"],
            account_id=m["account_id"],
            amount=m["amount"],
            channel=m["channel"],
            status=PaymentStatus(m["status"]),
            paid_at=m["paid_at"],
            settlement_date=m["settlement_date"],
            posted_at=utc(m["posted_at"]),
            bill_ids=tuple(b for b in m["bill_ids"].split(",") if b),
            application_pending=bool(m["application_pending"]),
            allocations=bytes(m["allocations"] or b""),
            unallocated=m["unallocated"],
            unapply_pending=bool(m["unapply_pending"]),
            reversal_txn_id=m["reversal_txn_id"],
            reversed_at=utc(m["reversed_at"]) if m["reversed_at"] is not None else None,
            reversal_reason=m["reversal_reason"],
        )

    def ledger_entry(self) -> LedgerEntry:
        """This payment as the reconciliation engine reads it."""
        return LedgerEntry(
            bank_code=self.bank_code,
            bank_txn_id=self.bank_txn_id,
            payment_id=self.payment_id,
            account_id=self.account_id,
            amount=self.amount,
            status=self.status,
            paid_at=self.paid_at,
            settlement_date=self.settlement_date,
        )


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """What posting did: the payment, whether it was there already, and whether an
    earlier payment of the account still waits to be applied (then this one waits too,
    so payments reach billing in order)."""

    payment: PaymentRecord
    duplicate: bool
    behind_pending: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversalRequest:
    """A reversal (冲正) of a payment by id, or of a bank transaction by its serial."""

    reversal_txn_id: str
    payment_id: str = ""
    bank_code: str = ""
    bank_txn_id: str = ""
    amount: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReversalResult:
    outcome: ReverseOutcome
    payment: PaymentRecord | None
    duplicate: bool


def utc(value: dt.datetime) -> dt.datetime:
    """A timezone-aware column's value as UTC-aware."""
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
