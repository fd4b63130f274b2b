"""Payments applied to bills (销账), their reversal (冲正), and what an account owes.

Idempotency lives in the database: ``payment_id`` is the primary key of
``billing_payments``, written in the same transaction as the allocations and the bills'
new paid amounts. A repeat finds the row and returns the first allocations; two
concurrent first attempts cannot both insert it (the loser's transaction rolls back and it
answers as a repeat).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.nodes.billing.arrears import LateFee, LateFeeRule, late_fee, rule_for
from powerbus.nodes.billing.bills import (
    UNPAID,
    Allocation,
    BillRecord,
    allocations_of,
    record_of,
    status_after_payment,
)
from powerbus.nodes.billing.store import allocations, bills, payments
from powerbus.nodes.billing.tariff import CustomerClass

__all__ = ["Applied", "ArrearsItem", "ArrearsStatement", "Payments", "Released"]


@dataclass(frozen=True)
class Applied:
    """What ApplyPayment answers: the allocations, the credit left, whether a repeat."""

    allocations: tuple[Allocation, ...]
    unallocated_fen: int
    duplicate: bool


@dataclass(frozen=True)
class Released:
    """What UnapplyPayment answers: the released allocations and credit taken back."""

    allocations: tuple[Allocation, ...]
    unallocated_fen: int


@dataclass(frozen=True)
class ArrearsItem:
    """One unpaid bill and its late fee on the day asked about."""

    bill: BillRecord
    late: LateFee


@dataclass(frozen=True)
class ArrearsStatement:
    """What an account owes on a day (``GetArrears``)."""

    account_id: str
    as_of: date
    items: tuple[ArrearsItem, ...]
    credit_fen: int
    rule: LateFeeRule

    @property
    def principal_fen(self) -> int:
        return sum(item.bill.due_fen for item in self.items)

    @property
    def late_fee_fen(self) -> int:
        return sum(item.late.fen for item in self.items)

    @property
    def total_due_fen(self) -> int:
        """Principal plus late fees less credit, never below zero: what a bank collects."""
        return max(0, self.principal_fen + self.late_fee_fen - self.credit_fen)


class Payments:
    """Apply and reverse payments; state what an account owes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def apply(
        self,
        *,
        payment_id: str,
        account_id: str,
        amount_fen: int,
        paid_at: datetime | None = None,
        bill_ids: Sequence[str] = (),
    ) -> Applied:
        """Allocate a payment to the named bills first, then the oldest due; the rest is
        credit (预存). Idempotent by ``payment_id``."""
        if not payment_id:
            raise InvalidArgument("payment_id", "must not be empty")
        if not account_id:
            raise InvalidArgument("account", "must not be empty")
        if amount_fen <= 0:
            raise InvalidArgument("amount", f"must be positive, got {amount_fen} fen")
        try:
            with write_transaction(self._engine) as conn:
                first = self._repeat(conn, payment_id, account_id, amount_fen)
                if first is not None:
                    return first
                return self._allocate(conn, payment_id, account_id, amount_fen, paid_at, bill_ids)
        except sa.exc.IntegrityError:
            # Another transaction inserted this payment_id first: answer as a repeat.
            with read_transaction(self._engine) as conn:
                first = self._repeat(conn, payment_id, account_id, amount_fen)
            if first is None:
                raise
            return first

    @staticmethod
    def _repeat(
        conn: Connection, payment_id: str, account_id: str, amount_fen: int
    ) -> Applied | None:
        row = conn.execute(sa.select(payments).where(payments.c.payment_id == payment_id)).first()
        if row is None:
            return None
        if row.account_id != account_id or row.amount_fen != amount_fen:
            raise AlreadyExists(
                "payment_id",
                f"{payment_id!r} was applied to account {row.account_id!r} for "
                f"{row.amount_fen} fen, not {account_id!r} for {amount_fen} fen",
            )
        found = allocations_of(conn, payment_id=payment_id)
        # The first answer's unallocated: the amount less what it allocated.
        left = row.amount_fen - sum(a.amount_fen for a in found)
        return Applied(tuple(found), left, True)

    @staticmethod
    def _allocate(
        conn: Connection,
        payment_id: str,
        account_id: str,
        amount_fen: int,
        paid_at: datetime | None,
        bill_ids: Sequence[str],
    ) -> Applied:
        known = conn.execute(
            sa.select(sa.func.count()).select_from(bills).where(bills.c.account_id == account_id)
        ).scalar_one()
        if not known:
            raise NotFound(f"billing does not know account {account_id!r}")
        owned = conn.execute(
            sa.select(bills)
            .where(bills.c.account_id == account_id, bills.c.status.in_([s.value for s in UNPAID]))
            .order_by(bills.c.due_date, bills.c.period_start, bills.c.bill_id)
        ).all()
        by_id = {r.bill_id: r for r in owned}
        for bill_id in bill_ids:
            if bill_id not in by_id:
                exists = conn.execute(
                    sa.select(bills.c.bill_id).where(
                        bills.c.bill_id == bill_id, bills.c.account_id == account_id
                    )
                ).first()
                if exists is None:
                    raise NotFound(f"account {account_id!r} has no bill {bill_id!r}")
        named = [by_id[b] for b in dict.fromkeys(bill_ids) if b in by_id]
        order = named + [r for r in owned if r.bill_id not in set(bill_ids)]
        now = datetime.now(timezone.utc)
        left = amount_fen
        made: list[Allocation] = []
        conn.execute(
            sa.insert(payments).values(
                payment_id=payment_id,
                account_id=account_id,
                amount_fen=amount_fen,
                unallocated_fen=0,
                paid_at=paid_at,
                applied_at=now,
            )
        )
        for row in order:
            if left == 0:
                break
            share = min(left, row.total_fen - row.paid_fen)
            if share <= 0:
                continue
            left -= share
            paid = row.paid_fen + share
            status = status_after_payment(row.total_fen, paid)
            conn.execute(
                sa.update(bills)
                .where(bills.c.bill_id == row.bill_id)
                .values(
                    paid_fen=paid,
                    status=status.value,
                    paid_at=now if paid >= row.total_fen else None,
                )
            )
            conn.execute(
                sa.insert(allocations).values(
                    payment_id=payment_id, bill_id=row.bill_id, amount_fen=share, applied_at=now
                )
            )
            made.append(
                Allocation(
                    payment_id=payment_id, bill_id=row.bill_id, amount_fen=share, applied_at=now
                )
            )
        conn.execute(
            sa.update(payments)
            .where(payments.c.payment_id == payment_id)
            .values(unallocated_fen=left)
        )
        return Applied(tuple(made), left, False)

    def unapply(self, payment_id: str, *, reason: str = "") -> Released:
        """Take a reversed payment off its bills, which are due again, and its credit off
        the account. Idempotent: a repeat returns the same released allocations."""
        if not payment_id:
            raise InvalidArgument("payment_id", "must not be empty")
        now = datetime.now(timezone.utc)
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(payments).where(payments.c.payment_id == payment_id)
            ).first()
            if row is None:
                raise NotFound(f"payment {payment_id!r} was never applied")
            if row.released_at is None:
                live = conn.execute(
                    sa.select(allocations).where(
                        allocations.c.payment_id == payment_id, allocations.c.released_at.is_(None)
                    )
                ).all()
                for a in live:
                    bill = conn.execute(sa.select(bills).where(bills.c.bill_id == a.bill_id)).one()
                    if bill.status == "voided":
                        continue  # voiding released it already
                    paid = bill.paid_fen - a.amount_fen
                    conn.execute(
                        sa.update(bills)
                        .where(bills.c.bill_id == a.bill_id)
                        .values(
                            paid_fen=paid,
                            status=status_after_payment(bill.total_fen, paid).value,
                            paid_at=None,
                        )
                    )
                conn.execute(
                    sa.update(allocations)
                    .where(
                        allocations.c.payment_id == payment_id, allocations.c.released_at.is_(None)
                    )
                    .values(released_at=now)
                )
                conn.execute(
                    sa.update(payments)
                    .where(payments.c.payment_id == payment_id)
                    .values(released_at=now, release_reason=reason)
                )
            released = [a for a in allocations_of(conn, payment_id=payment_id) if a.released_at]
            return Released(tuple(released), row.unallocated_fen)

    def arrears(self, account_id: str, as_of: date) -> ArrearsStatement:
        """Unpaid bills oldest first with their late fees on ``as_of``, and the credit."""
        if not account_id:
            raise InvalidArgument("account", "must not be empty")
        with read_transaction(self._engine) as conn:
            known = conn.execute(
                sa.select(bills.c.customer_class)
                .where(bills.c.account_id == account_id)
                .order_by(bills.c.period_start.desc())
                .limit(1)
            ).first()
            if known is None:
                raise NotFound(f"billing does not know account {account_id!r}")
            rows = conn.execute(
                sa.select(bills)
                .where(
                    bills.c.account_id == account_id, bills.c.status.in_([s.value for s in UNPAID])
                )
                .order_by(bills.c.period_start, bills.c.bill_id)
            ).all()
            credit = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(payments.c.unallocated_fen), 0)).where(
                    payments.c.account_id == account_id, payments.c.released_at.is_(None)
                )
            ).scalar_one()
        rule = rule_for(CustomerClass(known.customer_class))
        items = []
        for row in rows:
            bill = record_of(row)
            items.append(
                ArrearsItem(
                    bill,
                    late_fee(
                        bill.due_fen,
                        due=bill.due_date,
                        as_of=as_of,
                        rule=rule_for(bill.customer_class),
                    ),
                )
            )
        return ArrearsStatement(account_id, as_of, tuple(items), int(credit), rule)
