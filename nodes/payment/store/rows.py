"""A newly posted payment as its ``payments`` row and as the record reading that row
back would give, so a batch of posts builds both without reading anything back.

>>> import datetime as dt
>>> req = PostRequest(bank_code="0102", bank_txn_id="B1", account_id="A1", amount=500,
...     channel="PAYMENT_CHANNEL_BANK_COUNTER", paid_at=dt.datetime(2026, 12, 4, 9))
>>> record = record_of(row_of(req, seq=1, posted_at=dt.datetime(2026, 12, 4, 9, 1)))
>>> (record.seq, record.amount, record.status.value, record.application_pending)
(1, 500, 'POSTED', True)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from powerbus.adapters.bank import PaymentStatus
from powerbus.nodes.payment.store.records import PaymentRecord, PostRequest, payment_id_of

__all__ = ["record_of", "row_of"]

_POSTED = PaymentStatus.POSTED.value
_POSTED_STATUS = PaymentStatus.POSTED  # read once: an Enum member read is a descriptor call


def record_of(row: dict[str, Any]) -> PaymentRecord:
    """The record of a row about to be inserted (what reading it back would give).
    Not :meth:`PaymentRecord.from_row`: that one converts what a database hands back (the
    status enum, UTC times), which a row built here already is, on the posting loop's
    hot path of thousands a second."""
    return PaymentRecord(
        payment_id=row["payment_id"],
        seq=row["seq"],
        bank_code=row["bank_code"],
        bank_txn_id=row["bank_txn_id"],
        account_id=row["account_id"],
        amount=row["amount"],
        channel=row["channel"],
        status=_POSTED_STATUS,
        paid_at=row["paid_at"],
        settlement_date=row["settlement_date"],
        posted_at=row["posted_at"],
        bill_ids=tuple(b for b in row["bill_ids"].split(",") if b),
        application_pending=True,
        allocations=b"",
        unallocated=0,
        unapply_pending=False,
        reversal_txn_id="",
        reversed_at=None,
        reversal_reason="",
    )


def row_of(request: PostRequest, *, seq: int, posted_at: dt.datetime) -> dict[str, Any]:
    """The ``payments`` row of a newly posted request."""
    return {
        "payment_id": payment_id_of(request.bank_code, request.bank_txn_id),
        "seq": seq,
        "bank_code": request.bank_code,
        "bank_txn_id": request.bank_txn_id,
        "account_id": request.account_id,
        "amount": request.amount,
        "channel": request.channel,
        "status": _POSTED,
        "paid_at": request.paid_at,
        "settlement_date": request.settlement_date,
        "posted_at": posted_at,
        "bill_ids": ",".join(request.bill_ids),
        "application_pending": True,
        "allocations": b"",
        "unallocated": 0,
        "unapply_pending": False,
        "reversal_txn_id": "",
        "reversed_at": None,
        "reversal_reason": "",
    }
