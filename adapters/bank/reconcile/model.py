"""Records of reconciliation (对账): ledger entries in, classified items and a report out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from powerbus.adapters.bank.values import (
    Category,
    LineStatus,
    PaymentChannel,
    PaymentStatus,
    ResolutionAction,
)

__all__ = [
    "CategoryTotal",
    "ItemResolution",
    "LedgerEntry",
    "ReconciliationItem",
    "ReconciliationReport",
    "Window",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """A payment as the ledger holds it (``powerbus.payment.v1.Payment`` in brief)."""

    bank_code: str
    bank_txn_id: str
    payment_id: str
    account_id: str
    amount: int  # fen
    status: PaymentStatus
    paid_at: dt.datetime  # bank local time of the payment, naive like the statement's
    settlement_date: dt.date | None = None  # the bank's accounting date, when it said


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Which ledger entries belong to ``settlement_date``.

    An entry belongs to the date when its settlement date is that date, or (no date
    given) when it was paid that calendar day. Entries paid up to ``before`` earlier or
    ``after`` later are still matched against the statement's lines, because bank and
    utility clocks and cut-offs differ around midnight (T vs T+1): only those that find
    no line are judged by where they belong.

    >>> w = Window(settlement_date=dt.date(2026, 12, 4))
    >>> w.start, w.end
    (datetime.datetime(2026, 12, 3, 23, 0), datetime.datetime(2026, 12, 5, 1, 0))
    """

    settlement_date: dt.date
    before: dt.timedelta = dt.timedelta(hours=1)
    after: dt.timedelta = dt.timedelta(hours=1)

    @property
    def day_start(self) -> dt.datetime:
        return dt.datetime.combine(self.settlement_date, dt.time())

    @property
    def start(self) -> dt.datetime:
        return self.day_start - self.before

    @property
    def end(self) -> dt.datetime:
        return self.day_start + dt.timedelta(days=1) + self.after


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemResolution:
    """How an operator resolved an item: who, when, what, why, and the journal
    transactions it wrote (``ItemResolution``)."""

    action: ResolutionAction
    reason: str
    operator: str
    resolved_at: dt.datetime
    category: Category  # the item's category when it was resolved
    ledger_txn_ids: tuple[int, ...] = ()
    payment_id: str = ""
    written_off: int = 0  # fen, bank side minus ledger side; WRITE_OFF only


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconciliationItem:
    """One compared transaction; amounts are None on the side it is missing from."""

    category: Category
    bank_txn_id: str
    payment_id: str = ""
    account_id: str = ""
    bank_amount: int | None = None
    system_amount: int | None = None
    bank_status: LineStatus | None = None
    system_status: PaymentStatus | None = None
    line_number: int = 0  # the statement line; 0 when not in the statement
    detail: str = ""
    bank_time: dt.datetime | None = None  # the statement line's, when there is one
    channel: PaymentChannel | None = None
    item_number: int = 0  # 1-based position in the full report, once numbered
    resolution: ItemResolution | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryTotal:
    category: Category
    count: int
    bank_amount: int
    system_amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconciliationReport:
    """The outcome of reconciling one bank's settlement date (``ReconciliationReport``)."""

    bank_code: str
    settlement_date: dt.date
    generated_at: dt.datetime
    totals: tuple[CategoryTotal, ...]
    items: tuple[ReconciliationItem, ...]
    bank_count: int
    bank_total: int
    system_count: int
    system_total: int
    balanced: bool
    statement_sha256: str
    file_name: str = ""
    report_id: str = ""  # "<bank>-<YYYYMMDD>" once stored by the payment node

    def differences(self) -> tuple[ReconciliationItem, ...]:
        """Items that are neither MATCHED nor IN_TRANSIT."""
        return tuple(i for i in self.items if i.category not in _QUIET)

    def unresolved(self) -> tuple[ReconciliationItem, ...]:
        """Differences no operator has resolved yet."""
        return tuple(i for i in self.differences() if i.resolution is None)


_QUIET = frozenset({Category.MATCHED, Category.IN_TRANSIT})
