"""Shared pieces of the bank adapter tests: keys and a small utility side.

``MemoryUtility`` is the utility's half of the protocol reduced to a dict: idempotent
by serial, reversals that may arrive before their originals. Tests serve it with the real
``ProtocolServer`` on a loopback port, so simulator and clients talk to it over TCP.
"""

from __future__ import annotations

import dataclasses

from powerbus.adapters.bank import (
    ArrearsQuery,
    ArrearsReply,
    FailedPrecondition,
    Header,
    LedgerEntry,
    PaymentReply,
    PaymentRequest,
    PaymentStatus,
    ReversalReply,
    ReversalRequest,
    ReverseOutcome,
    StatusQuery,
    StatusReply,
    TxnState,
)
from powerbus.bus.kernel.errors import AlreadyExists, NotFound

BANK = "0102"
KEY = b"test-mac-key-0102"
ACCOUNTS = tuple(f"31{n:08d}" for n in range(1, 21))


class MemoryUtility:
    """The utility's side of collections, in memory (a CollectionHandler)."""

    def __init__(self, accounts: tuple[str, ...] = ACCOUNTS) -> None:
        self.due = {a: 10_000 + i * 137 for i, a in enumerate(accounts)}
        self.entries: dict[str, LedgerEntry] = {}
        self.reversals: dict[str, str] = {}  # reversal serial -> original serial
        self.blocked: set[str] = set()  # reversed before they arrived
        self.collect_calls = 0

    async def query_arrears(self, header: Header, request: ArrearsQuery) -> ArrearsReply:
        if request.account_id not in self.due:
            raise NotFound(f"account {request.account_id} unknown")
        due = self.due[request.account_id]
        return ArrearsReply(
            account_id=request.account_id,
            customer_name="张*",
            total_due=due,
            principal=due,
            late_fee=0,
            credit_balance=0,
            bill_count=1,
        )

    async def collect(self, header: Header, request: PaymentRequest) -> PaymentReply:
        self.collect_calls += 1
        if request.account_id not in self.due:
            raise NotFound(f"account {request.account_id} unknown")
        if header.serial in self.blocked:
            raise FailedPrecondition(f"{header.serial} was reversed before it arrived")
        known = self.entries.get(header.serial)
        if known is not None:
            if (known.account_id, known.amount) != (request.account_id, request.amount):
                raise AlreadyExists("serial", f"{header.serial} posted with other terms")
            return self._reply(known, duplicate=True)
        entry = LedgerEntry(
            bank_code=header.bank_code,
            bank_txn_id=header.serial,
            payment_id=f"P{len(self.entries) + 1:08d}",
            account_id=request.account_id,
            amount=request.amount,
            status=PaymentStatus.POSTED,
            paid_at=header.sent_at,
            settlement_date=request.settlement_date,
        )
        self.entries[header.serial] = entry
        return self._reply(entry, duplicate=False)

    def _reply(self, entry: LedgerEntry, *, duplicate: bool) -> PaymentReply:
        return PaymentReply(
            account_id=entry.account_id,
            amount=entry.amount,
            payment_id=entry.payment_id,
            remaining_due=0,
            duplicate=duplicate,
        )

    async def reverse(self, header: Header, request: ReversalRequest) -> ReversalReply:
        earlier = self.reversals.get(header.serial)
        if earlier is not None and earlier != request.original_serial:
            raise AlreadyExists("serial", f"reversal {header.serial} used for {earlier}")
        self.reversals[header.serial] = request.original_serial
        entry = self.entries.get(request.original_serial)
        if entry is None:
            self.blocked.add(request.original_serial)
            return ReversalReply(
                original_serial=request.original_serial,
                outcome=ReverseOutcome.ORIGINAL_NOT_FOUND,
                duplicate=earlier is not None,
            )
        if entry.amount != request.amount:
            raise FailedPrecondition(f"amount {request.amount} is not {entry.amount}")
        self.entries[entry.bank_txn_id] = dataclasses.replace(entry, status=PaymentStatus.REVERSED)
        return ReversalReply(
            original_serial=request.original_serial,
            outcome=ReverseOutcome.REVERSED,
            payment_id=entry.payment_id,
            duplicate=earlier is not None,
        )

    async def query_status(self, header: Header, request: StatusQuery) -> StatusReply:
        entry = self.entries.get(request.target_serial)
        if entry is None:
            return StatusReply(target_serial=request.target_serial, state=TxnState.NOT_FOUND)
        state = TxnState.SUCCESS if entry.status is PaymentStatus.POSTED else TxnState.REVERSED
        return StatusReply(
            target_serial=request.target_serial,
            state=state,
            account_id=entry.account_id,
            amount=entry.amount,
        )
