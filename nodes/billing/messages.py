"""The node's records as ``powerbus.billing.v1`` messages: bills, runs, arrears,
allocations. (Tariffs, lines and usage are in :mod:`~powerbus.nodes.billing.convert`.)"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from powerbus.billing.v1 import billing_pb2
from powerbus.common.v1 import common_pb2
from powerbus.nodes.billing.bills import Allocation, BillRecord, BillStatus
from powerbus.nodes.billing.convert import (
    date_to_proto,
    enum_value,
    lines_to_proto,
    money,
    timestamp,
)
from powerbus.nodes.billing.payments import ArrearsStatement
from powerbus.nodes.billing.run_store import RunRecord

__all__ = [
    "allocation_to_proto",
    "allocations_to_proto",
    "arrears_to_proto",
    "bill_to_proto",
    "period",
    "run_to_proto",
]

_MILLI = Decimal("0.001")


def period(start: datetime, end: datetime) -> common_pb2.Period:
    message = common_pb2.Period()
    _stamp(message, "start", start)
    _stamp(message, "end", end)
    return message


def _stamp(message: object, name: str, moment: datetime | None) -> None:
    stamp = timestamp(moment)
    if stamp is not None:
        getattr(message, name).CopyFrom(stamp)


def allocation_to_proto(allocation: Allocation) -> billing_pb2.PaymentAllocation:
    message = billing_pb2.PaymentAllocation(
        payment_id=allocation.payment_id,
        bill_id=allocation.bill_id,
        amount=money(allocation.amount_fen),
    )
    _stamp(message, "applied_at", allocation.applied_at)
    _stamp(message, "released_at", allocation.released_at)
    return message


def allocations_to_proto(allocations: Iterable[Allocation]) -> list[billing_pb2.PaymentAllocation]:
    return [allocation_to_proto(a) for a in allocations]


def bill_to_proto(bill: BillRecord) -> billing_pb2.Bill:
    """A ``Bill`` message; ``amount_due`` is what is still owed (0 once voided)."""
    status = BillStatus.ISSUED if bill.status is BillStatus.DRAFT else bill.status
    d = bill.determinants
    message = billing_pb2.Bill(
        bill_id=bill.bill_id,
        account=common_pb2.AccountRef(account_id=bill.account_id),
        tariff_id=bill.tariff_id,
        period=period(bill.period_start, bill.period_end),
        status=enum_value(status.value, billing_pb2.BillStatus),
        lines=lines_to_proto(bill.lines),
        total=money(bill.total_fen),
        amount_paid=money(bill.paid_fen),
        amount_due=money(bill.due_fen),
        due_date=date_to_proto(bill.due_date),
        run_id=bill.run_id or "",
        kwh=float(Decimal(bill.kwh_milli) * _MILLI),
        max_demand_kw=float(Decimal(d.get("max_demand_kw", "0"))),
        reactive_kvarh=float(Decimal(d.get("reactive_kvarh", "0"))),
        power_factor=common_pb2.Decimal(value=d.get("power_factor") or ""),
        estimated=bool(d.get("estimated", False)),
        allocations=allocations_to_proto(bill.allocations),
        replaces_bill_id=bill.replaces_bill_id or "",
        void_reason=bill.void_reason or "",
    )
    for name, kwh in d.get("tou_kwh", {}).items():
        message.tou_usage.add(
            period=enum_value(name, billing_pb2.TouPeriod), kwh=float(Decimal(kwh))
        )
    _stamp(message, "issued_at", bill.issued_at)
    _stamp(message, "paid_at", bill.paid_at)
    _stamp(message, "voided_at", bill.voided_at)
    return message


def run_to_proto(run: RunRecord) -> billing_pb2.BillingRun:
    message = billing_pb2.BillingRun(
        run_id=run.run_id,
        period=period(run.start, run.end),
        account_ids=run.account_ids,
        state=enum_value(run.state.value, billing_pb2.BillingRunState),
        accounts_total=run.accounts_total,
        bills_issued=run.bills_issued,
        accounts_skipped=run.accounts_skipped,
        accounts_failed=run.accounts_failed,
        total_billed=money(run.total_billed_fen),
        total_kwh=float(Decimal(run.total_kwh_milli) * _MILLI),
    )
    if run.due_date is not None:
        message.due_date.CopyFrom(date_to_proto(run.due_date))
    for error in run.errors:
        message.errors.add(
            account_id=error.account_id, reason=error.reason, retriable=error.retriable
        )
    if run.error and not run.errors:
        message.errors.add(reason=run.error, retriable=True)
    _stamp(message, "created_at", run.created_at)
    _stamp(message, "started_at", run.started_at)
    _stamp(message, "finished_at", run.finished_at)
    return message


def arrears_to_proto(statement: ArrearsStatement) -> billing_pb2.Arrears:
    message = billing_pb2.Arrears(
        account=common_pb2.AccountRef(account_id=statement.account_id),
        as_of=date_to_proto(statement.as_of),
        principal=money(statement.principal_fen),
        late_fee=money(statement.late_fee_fen),
        total_due=money(statement.total_due_fen),
        credit_balance=money(statement.credit_fen),
        late_fee_rate=common_pb2.Decimal(value=str(statement.rule.current_year_rate)),
    )
    for item in statement.items:
        message.items.add(
            bill_id=item.bill.bill_id,
            period=period(item.bill.period_start, item.bill.period_end),
            amount_due=money(item.bill.due_fen),
            due_date=date_to_proto(item.bill.due_date),
            days_overdue=item.late.days,
            late_fee=money(item.late.fen),
        )
    return message
