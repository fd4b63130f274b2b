"""Proto messages ↔ the store's records. Servicers call these and nothing else converts.

Bank times are naive local times (the bank protocol and its statements carry no zone);
on the wire they are ``Timestamp``s, read and written in this process's local zone, the
zone the bank node reads the bank's clock in.

>>> local = dt.datetime(2026, 12, 4, 9, 30)
>>> from_timestamp(timestamp(local)) == local
True
>>> to_date(date_proto(dt.date(2026, 12, 4)))
datetime.date(2026, 12, 4)
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from powerbus.adapters.bank import (
    Category,
    CategoryTotal,
    ItemResolution,
    LineKind,
    LineStatus,
    PaymentStatus,
    ReconciliationItem,
    ReconciliationReport,
    ResolutionAction,
    Statement,
    StatementLine,
)
from powerbus.adapters.bank import PaymentChannel as WireChannel
from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.store.records import PaymentRecord, PostRequest
from powerbus.payment.v1 import payment_pb2

__all__ = [
    "action_from_proto",
    "annotate",
    "date_proto",
    "differences_only",
    "from_timestamp",
    "item_from_proto",
    "money",
    "payment_proto",
    "post_request",
    "report_from_proto",
    "report_proto",
    "resolution_from_proto",
    "resolution_proto",
    "statement_from_proto",
    "timestamp",
    "to_date",
]

_STATUS = {
    PaymentStatus.POSTED: payment_pb2.PAYMENT_STATUS_POSTED,
    PaymentStatus.REVERSED: payment_pb2.PAYMENT_STATUS_REVERSED,
}
_LINE_STATUS = {
    LineStatus.SUCCESS: payment_pb2.STATEMENT_LINE_STATUS_SUCCESS,
    LineStatus.FAILED: payment_pb2.STATEMENT_LINE_STATUS_FAILED,
    LineStatus.PROCESSING: payment_pb2.STATEMENT_LINE_STATUS_PROCESSING,
    LineStatus.REVERSED: payment_pb2.STATEMENT_LINE_STATUS_REVERSED,
}
_LINE_STATUS_BACK = {v: k for k, v in _LINE_STATUS.items()}
_KIND = {
    LineKind.COLLECTION: payment_pb2.STATEMENT_LINE_KIND_COLLECTION,
    LineKind.REVERSAL: payment_pb2.STATEMENT_LINE_KIND_REVERSAL,
}
_KIND_BACK = {v: k for k, v in _KIND.items()}


def money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(fen=fen, currency="CNY")


def timestamp(local: dt.datetime) -> Timestamp:
    """A naive local (bank) time, or an aware one, as a ``Timestamp``."""
    ts = Timestamp()
    ts.FromDatetime(local.astimezone(dt.timezone.utc))
    return ts


def from_timestamp(ts: Timestamp) -> dt.datetime:
    """A ``Timestamp`` as naive local time."""
    return ts.ToDatetime(tzinfo=dt.timezone.utc).astimezone().replace(tzinfo=None)


def date_proto(day: dt.date) -> common_pb2.Date:
    return common_pb2.Date(year=day.year, month=day.month, day=day.day)


def to_date(day: common_pb2.Date, *, field: str = "settlement_date") -> dt.date:
    try:
        return dt.date(day.year, day.month, day.day)
    except ValueError as exc:
        raise InvalidArgument(
            field, f"{day.year}-{day.month}-{day.day} is not a date ({exc})"
        ) from None


def post_request(request: payment_pb2.PostPaymentRequest, *, now: dt.datetime) -> PostRequest:
    """Check a ``PostPaymentRequest`` (INVALID_ARGUMENT naming the field) and convert it."""
    if not request.bank_code:
        raise InvalidArgument("bank_code", "must not be empty")
    if not request.bank_txn_id:
        raise InvalidArgument("bank_txn_id", "must not be empty")
    if not request.account.account_id:
        raise InvalidArgument("account.account_id", "must not be empty")
    if request.amount.fen <= 0:
        raise InvalidArgument("amount.fen", f"must be positive, got {request.amount.fen}")
    if request.amount.currency not in ("", "CNY"):
        raise InvalidArgument("amount.currency", f"must be CNY, got {request.amount.currency!r}")
    has_date = request.HasField("settlement_date")
    return PostRequest(
        bank_code=request.bank_code,
        bank_txn_id=request.bank_txn_id,
        account_id=request.account.account_id,
        amount=request.amount.fen,
        channel=payment_pb2.PaymentChannel.Name(request.channel),
        paid_at=from_timestamp(request.paid_at) if request.HasField("paid_at") else now,
        settlement_date=to_date(request.settlement_date) if has_date else None,
        bill_ids=tuple(request.bill_ids),
    )


def payment_proto(record: PaymentRecord) -> payment_pb2.Payment:
    """A stored payment as ``powerbus.payment.v1.Payment``."""
    payment = payment_pb2.Payment(
        payment_id=record.payment_id,
        bank_code=record.bank_code,
        bank_txn_id=record.bank_txn_id,
        account=common_pb2.AccountRef(account_id=record.account_id),
        amount=money(record.amount),
        channel=payment_pb2.PaymentChannel.Value(record.channel),
        status=_STATUS[record.status],
        paid_at=timestamp(record.paid_at),
        posted_at=timestamp(record.posted_at),
        application_pending=record.application_pending,
        reversal_txn_id=record.reversal_txn_id,
        reversal_reason=record.reversal_reason,
    )
    if record.settlement_date is not None:
        payment.settlement_date.CopyFrom(date_proto(record.settlement_date))
    if record.allocations:
        applied = billing_pb2.ApplyPaymentResponse.FromString(record.allocations)
        payment.allocations.extend(applied.allocations)
    if record.reversed_at is not None:
        payment.reversed_at.CopyFrom(timestamp(record.reversed_at))
    return payment


def statement_line_proto(line: StatementLine) -> payment_pb2.StatementLine:
    return payment_pb2.StatementLine(
        line_number=line.line_number,
        bank_txn_id=line.bank_txn_id,
        account_id=line.account_id,
        amount=money(line.amount),
        kind=_KIND[line.kind],
        status=_LINE_STATUS[line.status],
        txn_time=timestamp(line.txn_time),
        channel=int(line.channel.value),  # type: ignore[arg-type]
        original_txn_id=line.original_txn_id,
    )


def statement_from_proto(
    pages: list[payment_pb2.FetchStatementResponse], *, bank_code: str, day: dt.date
) -> Statement:
    """The statement a bank node sent, page by page, as the reconciliation engine reads it."""
    first = pages[0]
    lines = tuple(
        StatementLine(
            line_number=line.line_number,
            bank_txn_id=line.bank_txn_id,
            account_id=line.account_id,
            amount=line.amount.fen,
            kind=_KIND_BACK[line.kind],
            status=_LINE_STATUS_BACK[line.status],
            txn_time=from_timestamp(line.txn_time),
            channel=WireChannel(str(line.channel)),
            original_txn_id=line.original_txn_id,
        )
        for page in pages
        for line in page.lines
    )
    return Statement(
        bank_code=bank_code,
        settlement_date=day,
        lines=lines,
        line_count=first.line_count,
        total_amount=first.total_amount.fen,
        file_name=first.file_name,
        sha256=first.sha256,
    )


_CATEGORY = {
    c: payment_pb2.ReconciliationCategory.Value(f"RECONCILIATION_CATEGORY_{c.value}")
    for c in Category
}
_CATEGORY_BACK = {v: k for k, v in _CATEGORY.items()}
_QUIET = (Category.MATCHED, Category.IN_TRANSIT)
_QUIET_PROTO = (
    payment_pb2.RECONCILIATION_CATEGORY_MATCHED,
    payment_pb2.RECONCILIATION_CATEGORY_IN_TRANSIT,
)
_ACTION = {
    a: payment_pb2.ResolutionAction.Value(f"RESOLUTION_ACTION_{a.value}") for a in ResolutionAction
}
_ACTION_BACK: dict[int, ResolutionAction] = {int(v): k for k, v in _ACTION.items()}


def report_proto(
    report: ReconciliationReport, *, differences_only: bool = False
) -> payment_pb2.ReconciliationReport:
    """The engine's report as ``powerbus.payment.v1.ReconciliationReport``; items are
    numbered by their position in the full report, also when only differences go out."""
    proto = payment_pb2.ReconciliationReport(
        bank_code=report.bank_code,
        settlement_date=date_proto(report.settlement_date),
        generated_at=timestamp(report.generated_at),
        bank_count=report.bank_count,
        bank_total=money(report.bank_total),
        system_count=report.system_count,
        system_total=money(report.system_total),
        balanced=report.balanced,
        statement_sha256=report.statement_sha256,
        report_id=report.report_id,
        unresolved_count=len(report.unresolved()),
    )
    for total in report.totals:
        proto.totals.add(
            category=_CATEGORY[total.category],
            count=total.count,
            bank_amount=money(total.bank_amount),
            system_amount=money(total.system_amount),
        )
    for number, item in enumerate(report.items, start=1):
        if differences_only and item.category in _QUIET:
            continue
        _fill_item(proto.items.add(), item, number)
    return proto


def _fill_item(
    entry: payment_pb2.ReconciliationItem, item: ReconciliationItem, number: int
) -> None:
    entry.category = _CATEGORY[item.category]
    entry.bank_txn_id = item.bank_txn_id
    entry.payment_id = item.payment_id
    entry.account.account_id = item.account_id
    entry.line_number = item.line_number
    entry.detail = item.detail
    entry.item_number = number
    if item.bank_amount is not None:
        entry.bank_amount.CopyFrom(money(item.bank_amount))
    if item.system_amount is not None:
        entry.system_amount.CopyFrom(money(item.system_amount))
    if item.bank_status is not None:
        entry.bank_status = _LINE_STATUS[item.bank_status]
    if item.system_status is not None:
        entry.system_status = _STATUS[item.system_status]
    if item.bank_time is not None:
        entry.bank_time.CopyFrom(timestamp(item.bank_time))
    if item.channel is not None:
        entry.channel = payment_pb2.PaymentChannel.ValueType(int(item.channel.value))
    if item.resolution is not None:
        entry.resolution.CopyFrom(resolution_proto(item.resolution))


def resolution_proto(done: ItemResolution) -> payment_pb2.ItemResolution:
    proto = payment_pb2.ItemResolution(
        action=_ACTION[done.action],
        reason=done.reason,
        operator=done.operator,
        resolved_at=timestamp(done.resolved_at),
        ledger_txn_ids=list(done.ledger_txn_ids),
        payment_id=done.payment_id,
        category=_CATEGORY[done.category],
    )
    if done.written_off:
        proto.written_off.CopyFrom(money(done.written_off))
    return proto


def resolution_from_proto(proto: payment_pb2.ItemResolution) -> ItemResolution:
    return ItemResolution(
        action=action_from_proto(proto.action),
        reason=proto.reason,
        operator=proto.operator,
        resolved_at=proto.resolved_at.ToDatetime(tzinfo=dt.timezone.utc),
        category=_CATEGORY_BACK[proto.category],
        ledger_txn_ids=tuple(proto.ledger_txn_ids),
        payment_id=proto.payment_id,
        written_off=proto.written_off.fen,
    )


def action_from_proto(action: int) -> ResolutionAction:
    """A ``ResolutionAction`` number as the enum; INVALID_ARGUMENT when unset or unknown."""
    found = _ACTION_BACK.get(action)
    if found is None:
        raise InvalidArgument("action", "give POST, REVERSE or WRITE_OFF")
    return found


def annotate(
    proto: payment_pb2.ReconciliationReport,
    resolved: dict[tuple[str, int], ItemResolution],
    *,
    report_id: str,
) -> None:
    """Attach the stored resolutions to ``proto``'s items (by serial and line), number
    unnumbered items (reports stored before numbering) and count what is unresolved."""
    proto.report_id = report_id
    unresolved = 0
    for number, item in enumerate(proto.items, start=1):
        if not item.item_number:
            item.item_number = number
        done = resolved.get((item.bank_txn_id, item.line_number))
        if done is not None:
            item.resolution.CopyFrom(resolution_proto(done))
        elif item.category not in _QUIET_PROTO and not item.HasField("resolution"):
            unresolved += 1
    proto.unresolved_count = unresolved


def differences_only(proto: payment_pb2.ReconciliationReport) -> None:
    """Keep only the items that are neither MATCHED nor IN_TRANSIT, in place."""
    keep = [i for i in proto.items if i.category not in _QUIET_PROTO]
    del proto.items[:]
    proto.items.extend(keep)


def item_from_proto(i: payment_pb2.ReconciliationItem) -> ReconciliationItem:
    """A report item as received, as the engine's record."""
    return ReconciliationItem(
        category=_CATEGORY_BACK[i.category],
        bank_txn_id=i.bank_txn_id,
        payment_id=i.payment_id,
        account_id=i.account.account_id,
        bank_amount=i.bank_amount.fen if i.HasField("bank_amount") else None,
        system_amount=i.system_amount.fen if i.HasField("system_amount") else None,
        bank_status=_LINE_STATUS_BACK.get(i.bank_status),
        system_status=_STATUS_BACK.get(i.system_status),
        line_number=i.line_number,
        detail=i.detail,
        bank_time=from_timestamp(i.bank_time) if i.HasField("bank_time") else None,
        channel=WireChannel(str(i.channel)) if i.channel else None,
        item_number=i.item_number,
        resolution=resolution_from_proto(i.resolution) if i.HasField("resolution") else None,
    )


_STATUS_BACK = {v: k for k, v in _STATUS.items()}


def report_from_proto(proto: payment_pb2.ReconciliationReport) -> ReconciliationReport:
    """A report as received, back as the engine's record (for its JSON and table forms)."""
    items = tuple(item_from_proto(i) for i in proto.items)
    return ReconciliationReport(
        bank_code=proto.bank_code,
        settlement_date=to_date(proto.settlement_date),
        generated_at=from_timestamp(proto.generated_at),
        totals=tuple(
            CategoryTotal(
                category=_CATEGORY_BACK[t.category],
                count=t.count,
                bank_amount=t.bank_amount.fen,
                system_amount=t.system_amount.fen,
            )
            for t in proto.totals
        ),
        items=items,
        bank_count=proto.bank_count,
        bank_total=proto.bank_total.fen,
        system_count=proto.system_count,
        system_total=proto.system_total.fen,
        balanced=proto.balanced,
        statement_sha256=proto.statement_sha256,
        report_id=proto.report_id,
    )
