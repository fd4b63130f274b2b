"""Bills as the store keeps them: reading, listing, and voiding for correction.

Lifecycle: a billing run writes a bill as ``draft`` and issues it (``issued``) in a second
transaction together with the run's progress; payments move it to ``partially_paid`` and
``paid`` and back; a correction voids it (``voided``, kept, with the reason) and the next
run for that account and month writes the replacement, linked by ``replaces_bill_id``.
Overdue is not a status: an issued bill past its due date with money still due.
Drafts are the run's own business and are not served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import InvalidArgument, NotFound
from powerbus.nodes.billing.convert import line_from_record
from powerbus.nodes.billing.store import allocations, bills, payments
from powerbus.nodes.billing.tariff import BillLine, CustomerClass

__all__ = [
    "Allocation",
    "BillRecord",
    "BillStatus",
    "Bills",
    "allocations_of",
    "status_after_payment",
]


class BillStatus(str, Enum):
    """Stored status of a bill (the proto's ``BillStatus`` plus the run's draft)."""

    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOIDED = "voided"


LIVE = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.PAID)
UNPAID = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID)


def status_after_payment(total_fen: int, paid_fen: int) -> BillStatus:
    """The status of an issued bill with ``paid_fen`` of ``total_fen`` paid.

    >>> [status_after_payment(100, paid).value for paid in (0, 40, 100)]
    ['issued', 'partially_paid', 'paid']
    """
    if paid_fen >= total_fen:
        return BillStatus.PAID
    return BillStatus.PARTIALLY_PAID if paid_fen > 0 else BillStatus.ISSUED


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """Part of a payment applied to a bill."""

    payment_id: str
    bill_id: str
    amount_fen: int
    applied_at: datetime
    released_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class BillRecord:
    """One stored bill with its lines and allocations."""

    bill_id: str
    account_id: str
    customer_class: CustomerClass
    tariff_id: str
    bill_month: str
    period_start: datetime
    period_end: datetime
    status: BillStatus
    total_fen: int
    paid_fen: int
    kwh_milli: int
    determinants: dict[str, Any]
    lines: tuple[BillLine, ...]
    run_id: str | None
    issued_at: datetime | None
    due_date: date
    paid_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
    replaces_bill_id: str | None
    allocations: tuple[Allocation, ...] = ()

    @property
    def due_fen(self) -> int:
        """What is still owed on it (nothing on a voided bill)."""
        return 0 if self.status is BillStatus.VOIDED else self.total_fen - self.paid_fen

    def overdue_on(self, day: date) -> bool:
        """Whether money is still due after the due date."""
        return self.due_fen > 0 and day > self.due_date


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes for timezone-aware columns; they were stored as UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def record_of(row: Any, allocated: Sequence[Allocation] = ()) -> BillRecord:
    """A :class:`BillRecord` of a ``billing_bills`` row."""
    period_start, period_end = _utc(row.period_start), _utc(row.period_end)
    assert period_start is not None and period_end is not None
    return BillRecord(
        bill_id=row.bill_id,
        account_id=row.account_id,
        customer_class=CustomerClass(row.customer_class),
        tariff_id=row.tariff_id,
        bill_month=row.bill_month,
        period_start=period_start,
        period_end=period_end,
        status=BillStatus(row.status),
        total_fen=row.total_fen,
        paid_fen=row.paid_fen,
        kwh_milli=row.kwh_milli,
        determinants=dict(row.determinants),
        lines=tuple(line_from_record(r) for r in row.lines),
        run_id=row.run_id,
        issued_at=_utc(row.issued_at),
        due_date=row.due_date,
        paid_at=_utc(row.paid_at),
        voided_at=_utc(row.voided_at),
        void_reason=row.void_reason,
        replaces_bill_id=row.replaces_bill_id,
        allocations=tuple(allocated),
    )


def allocations_of(
    conn: Connection, *, bill_ids: Sequence[str] = (), payment_id: str = ""
) -> list[Allocation]:
    """Allocations of some bills, or of one payment, oldest first."""
    query = sa.select(allocations).order_by(allocations.c.allocation_id)
    if payment_id:
        query = query.where(allocations.c.payment_id == payment_id)
    else:
        query = query.where(allocations.c.bill_id.in_(bill_ids))
    return [
        Allocation(
            payment_id=r.payment_id,
            bill_id=r.bill_id,
            amount_fen=r.amount_fen,
            applied_at=_utc(r.applied_at) or r.applied_at,
            released_at=_utc(r.released_at),
        )
        for r in conn.execute(query)
    ]


class Bills:
    """Reads and corrections of stored bills."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, bill_id: str) -> BillRecord:
        """One bill with its allocations; :class:`NotFound` for an unknown id or a draft."""
        if not bill_id:
            raise InvalidArgument("bill_id", "must not be empty")
        with read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(bills).where(bills.c.bill_id == bill_id)).first()
            if row is None or row.status == BillStatus.DRAFT.value:
                raise NotFound(f"no bill {bill_id!r}")
            return record_of(row, allocations_of(conn, bill_ids=[bill_id]))

    def list(
        self,
        account_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        statuses: Sequence[BillStatus] = (),
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[BillRecord], int]:
        """An account's bills, newest period first, and how many match in all."""
        wanted = [s.value for s in (statuses or (*LIVE,))]
        where = (bills.c.account_id == account_id) & bills.c.status.in_(wanted)
        if start is not None and end is not None:
            where &= (bills.c.period_start < end) & (bills.c.period_end > start)
        with read_transaction(self._engine) as conn:
            known = conn.execute(
                sa.select(sa.func.count())
                .select_from(bills)
                .where(bills.c.account_id == account_id)
            ).scalar_one()
            if not known:
                raise NotFound(f"billing does not know account {account_id!r}")
            total = conn.execute(
                sa.select(sa.func.count()).select_from(bills).where(where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(bills)
                .where(where)
                .order_by(bills.c.period_start.desc(), bills.c.bill_id)
                .offset(offset)
                .limit(limit)
            ).all()
            allocated = allocations_of(conn, bill_ids=[r.bill_id for r in rows])
        by_bill: dict[str, list[Allocation]] = {}
        for a in allocated:
            by_bill.setdefault(a.bill_id, []).append(a)
        return [record_of(r, by_bill.get(r.bill_id, ())) for r in rows], total

    def void(self, bill_id: str, *, reason: str) -> BillRecord:
        """Cancel a bill for correction (作废): it is kept, marked voided with the reason;
        money paid on it goes back to the payments as credit. A new billing run for the
        account and month then bills it again, the new bill linked to this one. Voiding a
        voided bill changes nothing."""
        if not reason:
            raise InvalidArgument("reason", "a voided bill must say why")
        now = datetime.now(timezone.utc)
        with write_transaction(self._engine) as conn:
            row = conn.execute(sa.select(bills).where(bills.c.bill_id == bill_id)).first()
            if row is None or row.status == BillStatus.DRAFT.value:
                raise NotFound(f"no bill {bill_id!r}")
            if row.status != BillStatus.VOIDED.value:
                self._release_payments_of(conn, bill_id, now)
                conn.execute(
                    sa.update(bills)
                    .where(bills.c.bill_id == bill_id)
                    .values(status=BillStatus.VOIDED.value, voided_at=now, void_reason=reason)
                )
        return self.get(bill_id)

    @staticmethod
    def _release_payments_of(conn: Connection, bill_id: str, now: datetime) -> None:
        live = allocations.c.released_at.is_(None) & (allocations.c.bill_id == bill_id)
        for a in conn.execute(sa.select(allocations).where(live)).all():
            conn.execute(
                sa.update(payments)
                .where(payments.c.payment_id == a.payment_id)
                .values(unallocated_fen=payments.c.unallocated_fen + a.amount_fen)
            )
        conn.execute(sa.update(allocations).where(live).values(released_at=now))
