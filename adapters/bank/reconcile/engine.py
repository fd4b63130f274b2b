"""The reconciliation engine: pure, no I/O; statement + ledger entries in, report out.

Matching is by (bank code, bank serial). Per transaction:

==================  =====================  ==============================================
bank says           ledger says            category
==================  =====================  ==============================================
SUCCESS             POSTED, same amount    MATCHED
SUCCESS             POSTED, other amount   AMOUNT_DIFF
SUCCESS             REVERSED               STATUS_DIFF
REVERSED / FAILED   REVERSED               MATCHED (nets out)
REVERSED / FAILED   POSTED                 STATUS_DIFF
REVERSED / FAILED   —                      MATCHED (nothing moved on either side)
PROCESSING          anything               IN_TRANSIT
SUCCESS             —                      ONLY_IN_BANK (长款)
—                   POSTED, belongs here   ONLY_IN_SYSTEM (短款)
—                   POSTED, later date     IN_TRANSIT (after the bank's cut-off)
—                   REVERSED               MATCHED (nets out)
==================  =====================  ==============================================

A reversal line (kind R) marks its original as reversed at the bank, whether the
original is in the same statement or an earlier one. A serial listed twice: the second
line is ONLY_IN_BANK (the bank counted it twice).

>>> report = reconcile([], Statement(bank_code="0102", settlement_date=dt.date(2026, 12, 4),
...     lines=(), line_count=0, total_amount=0, file_name="f", sha256=""),
...     Window(settlement_date=dt.date(2026, 12, 4)), generated_at=dt.datetime(2026, 12, 5))
>>> report.balanced, report.items
(True, ())
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable

from powerbus.adapters.bank._bulk import gc_paused
from powerbus.adapters.bank.reconcile.model import (
    CategoryTotal,
    LedgerEntry,
    ReconciliationItem,
    ReconciliationReport,
    Window,
)
from powerbus.adapters.bank.statement.model import Statement, StatementLine
from powerbus.adapters.bank.values import Category, LineKind, LineStatus, PaymentStatus
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["reconcile"]

_POSTED = PaymentStatus.POSTED
_REVERSED = PaymentStatus.REVERSED
_SUCCESS = LineStatus.SUCCESS


def reconcile(
    ledger_entries: Iterable[LedgerEntry],
    statement: Statement,
    window: Window,
    *,
    generated_at: dt.datetime,
) -> ReconciliationReport:
    """Compare ``statement`` with the ledger entries of its bank.

    Pass the entries paid within ``window`` (and those a statement line names, such as the
    originals of reversals of earlier days). Every entry may match a line; an entry that
    matches none is judged only if it lies within the window, so a broader set is harmless.
    """
    with gc_paused():
        return _reconcile(ledger_entries, statement, window, generated_at)


def _reconcile(
    ledger_entries: Iterable[LedgerEntry],
    statement: Statement,
    window: Window,
    generated_at: dt.datetime,
) -> ReconciliationReport:
    if window.settlement_date != statement.settlement_date:
        raise InvalidArgument(
            "window", f"is for {window.settlement_date}, statement for {statement.settlement_date}"
        )
    bank = statement.bank_code
    start, end = window.start, window.end
    ledger: dict[str, LedgerEntry] = {}
    for posted in ledger_entries:
        if posted.bank_code == bank:
            ledger[posted.bank_txn_id] = posted
    collections_, reversals, duplicates = _bank_side(statement.lines)
    items: list[ReconciliationItem] = []
    append = items.append
    seen: set[str] = set()
    for txn_id, line in collections_.items():
        reversed_by = reversals.pop(txn_id, None)
        status = (
            LineStatus.REVERSED
            if reversed_by is not None and line.status is _SUCCESS
            else line.status
        )
        entry = ledger.get(txn_id)
        if entry is not None:
            seen.add(txn_id)
        append(_compare(line, status, entry))
    for original_id, reversal in reversals.items():  # reversals of earlier statements' lines
        original = ledger.get(original_id)
        if original is not None:
            seen.add(original_id)
        append(_earlier_reversal(reversal, original))
    for line, first in duplicates:
        append(
            _item(
                Category.ONLY_IN_BANK,
                line,
                None,
                line.status,
                f"serial listed again (first at line {first}); the bank counted it twice",
            )
        )
    for txn_id, entry in ledger.items():
        if txn_id in seen:
            continue
        in_window = start <= entry.paid_at < end or entry.settlement_date == window.settlement_date
        if in_window and (item := _unmatched_entry(entry, window)) is not None:
            append(item)
    return _report(statement, items, generated_at)


def _bank_side(
    lines: Iterable[StatementLine],
) -> tuple[dict[str, StatementLine], dict[str, StatementLine], list[tuple[StatementLine, int]]]:
    collected: dict[str, StatementLine] = {}
    reversals: dict[str, StatementLine] = {}
    duplicates: list[tuple[StatementLine, int]] = []
    for line in lines:
        if line.kind is LineKind.COLLECTION:
            first = collected.get(line.bank_txn_id)
            if first is None:
                collected[line.bank_txn_id] = line
            else:
                duplicates.append((line, first.line_number))
        elif line.status is _SUCCESS:
            reversals[line.original_txn_id] = line
    return collected, reversals, duplicates


def _item(
    category: Category,
    line: StatementLine,
    entry: LedgerEntry | None,
    bank_status: LineStatus,
    detail: str = "",
) -> ReconciliationItem:
    return ReconciliationItem(
        category=category,
        bank_txn_id=line.bank_txn_id,
        payment_id=entry.payment_id if entry else "",
        account_id=line.account_id,
        bank_amount=line.amount,
        system_amount=entry.amount if entry else None,
        bank_status=bank_status,
        system_status=entry.status if entry else None,
        line_number=line.line_number,
        detail=detail,
        bank_time=line.txn_time,
        channel=line.channel,
    )


def _compare(
    line: StatementLine, status: LineStatus, entry: LedgerEntry | None
) -> ReconciliationItem:
    if status is LineStatus.PROCESSING:
        return _item(Category.IN_TRANSIT, line, entry, status, "in progress at the bank")
    if entry is None:
        if status is _SUCCESS:
            return _item(
                Category.ONLY_IN_BANK, line, None, status, "collected at the bank, not posted"
            )
        return _item(Category.MATCHED, line, None, status, "nothing moved on either side")
    if status is _SUCCESS:
        if entry.status is _REVERSED:
            return _item(
                Category.STATUS_DIFF, line, entry, status, "reversed here, not at the bank"
            )
        if entry.amount != line.amount:
            return _item(
                Category.AMOUNT_DIFF,
                line,
                entry,
                status,
                f"amount {line.amount} fen at bank, {entry.amount} fen posted",
            )
        return _item(Category.MATCHED, line, entry, status)
    if entry.status is _POSTED:
        return _item(
            Category.STATUS_DIFF,
            line,
            entry,
            status,
            f"{status.name.lower()} at the bank, posted here",
        )
    return _item(Category.MATCHED, line, entry, status, "reversed on both sides")


def _earlier_reversal(reversal: StatementLine, entry: LedgerEntry | None) -> ReconciliationItem:
    if entry is None:
        category = Category.ONLY_IN_BANK
        detail = f"reversal {reversal.bank_txn_id} of a collection never posted"
    elif entry.status is _REVERSED:
        category, detail = Category.MATCHED, "reversed on both sides"
    else:
        category, detail = Category.STATUS_DIFF, "reversed at the bank, posted here"
    return ReconciliationItem(
        category=category,
        bank_txn_id=reversal.original_txn_id,
        payment_id=entry.payment_id if entry else "",
        account_id=reversal.account_id,
        bank_amount=reversal.amount,
        system_amount=entry.amount if entry else None,
        bank_status=LineStatus.REVERSED,
        system_status=entry.status if entry else None,
        line_number=reversal.line_number,
        detail=detail,
        bank_time=reversal.txn_time,
        channel=reversal.channel,
    )


def _unmatched_entry(entry: LedgerEntry, window: Window) -> ReconciliationItem | None:
    belongs = entry.settlement_date or entry.paid_at.date()
    if belongs < window.settlement_date:
        return None  # the earlier date's statement had it: that reconciliation's business
    if entry.status is _REVERSED:
        category, detail = Category.MATCHED, "posted and reversed here; nothing at the bank"
    elif belongs > window.settlement_date:
        category, detail = Category.IN_TRANSIT, "after the bank's cut-off; on a later statement"
    else:
        category, detail = Category.ONLY_IN_SYSTEM, "posted here, not in the bank's statement"
    return ReconciliationItem(
        category=category,
        bank_txn_id=entry.bank_txn_id,
        payment_id=entry.payment_id,
        account_id=entry.account_id,
        system_amount=entry.amount,
        system_status=entry.status,
        detail=detail,
    )


def _report(
    statement: Statement,
    items: list[ReconciliationItem],
    generated_at: dt.datetime,
) -> ReconciliationReport:
    counts: collections.Counter[Category] = collections.Counter()
    bank_sums: collections.Counter[Category] = collections.Counter()
    system_sums: collections.Counter[Category] = collections.Counter()
    for item in items:
        counts[item.category] += 1
        # Totals count money that moved: a failed or reversed line carries its amount for
        # the reader, but the bank kept nothing, as a reversed entry left nothing posted.
        # Summing the raw amounts showed MATCHED rows with a bank amount beside a ledger 0
        # (a refused collection the ledger rightly never posted).
        if item.bank_status is _SUCCESS:
            bank_sums[item.category] += item.bank_amount or 0
        if item.system_status is _POSTED:
            system_sums[item.category] += item.system_amount or 0
    totals = tuple(
        CategoryTotal(
            category=c, count=counts[c], bank_amount=bank_sums[c], system_amount=system_sums[c]
        )
        for c in Category
        if counts[c]
    )
    posted = [i.system_amount or 0 for i in items if i.system_status is _POSTED]
    quiet = {Category.MATCHED, Category.IN_TRANSIT}
    return ReconciliationReport(
        bank_code=statement.bank_code,
        settlement_date=statement.settlement_date,
        generated_at=generated_at,
        totals=totals,
        items=tuple(items),
        bank_count=statement.line_count,
        bank_total=statement.total_amount,
        system_count=len(posted),
        system_total=sum(posted),
        balanced=all(c in quiet for c in counts),
        statement_sha256=statement.sha256,
        file_name=statement.file_name,
    )
