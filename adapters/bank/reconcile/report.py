"""A reconciliation report as JSON (for storage and ``--json``) and as a readable table.

>>> import datetime as dt
>>> from powerbus.adapters.bank.reconcile.model import ReconciliationReport
>>> r = ReconciliationReport(bank_code="0102", settlement_date=dt.date(2026, 12, 4),
...     generated_at=dt.datetime(2026, 12, 5, 2), totals=(), items=(), bank_count=0,
...     bank_total=0, system_count=0, system_total=0, balanced=True, statement_sha256="")
>>> report_to_json(r)["balanced"]
True
>>> print(render_table(r).splitlines()[0])
对账 bank 0102 settlement 2026-12-04: BALANCED
"""

from __future__ import annotations

from typing import Any

from powerbus.adapters.bank.reconcile.model import ReconciliationItem, ReconciliationReport
from powerbus.adapters.bank.values import format_fen

__all__ = ["render_table", "report_to_json"]


def _item_json(item: ReconciliationItem) -> dict[str, Any]:
    return {
        "category": item.category.value,
        "bank_txn_id": item.bank_txn_id,
        "payment_id": item.payment_id,
        "account_id": item.account_id,
        "bank_amount_fen": item.bank_amount,
        "system_amount_fen": item.system_amount,
        "bank_status": item.bank_status.name if item.bank_status else None,
        "system_status": item.system_status.value if item.system_status else None,
        "line_number": item.line_number,
        "detail": item.detail,
    }


def report_to_json(
    report: ReconciliationReport, *, differences_only: bool = False
) -> dict[str, Any]:
    """A JSON-ready dict; amounts in fen as integers."""
    items = report.differences() if differences_only else report.items
    return {
        "bank_code": report.bank_code,
        "settlement_date": report.settlement_date.isoformat(),
        "generated_at": report.generated_at.isoformat(),
        "file_name": report.file_name,
        "statement_sha256": report.statement_sha256,
        "balanced": report.balanced,
        "bank_count": report.bank_count,
        "bank_total_fen": report.bank_total,
        "system_count": report.system_count,
        "system_total_fen": report.system_total,
        "totals": [
            {
                "category": t.category.value,
                "count": t.count,
                "bank_amount_fen": t.bank_amount,
                "system_amount_fen": t.system_amount,
            }
            for t in report.totals
        ],
        "items": [_item_json(i) for i in items],
    }


def _money(fen: int | None) -> str:
    return "" if fen is None else format_fen(fen)


def render_table(report: ReconciliationReport, *, limit: int = 50) -> str:
    """Totals per category, then up to ``limit`` differences, in plain text."""
    state = "BALANCED" if report.balanced else "DIFFERENCES"
    out = [
        f"对账 bank {report.bank_code} settlement {report.settlement_date}: {state}",
        f"bank   {report.bank_count:>9} lines  {format_fen(report.bank_total):>16} yuan",
        f"ledger {report.system_count:>9} posted {format_fen(report.system_total):>16} yuan",
        "",
        f"{'category':<15}{'count':>9}{'bank':>18}{'ledger':>18}",
    ]
    for t in report.totals:
        out.append(
            f"{t.category.value:<15}{t.count:>9}{format_fen(t.bank_amount):>18}"
            f"{format_fen(t.system_amount):>18}"
        )
    diffs = report.differences()
    if diffs:
        out += ["", f"{'category':<15}{'serial':<21}{'line':>7}{'bank':>14}{'ledger':>14}  detail"]
        for i in diffs[:limit]:
            out.append(
                f"{i.category.value:<15}{i.bank_txn_id:<21}{i.line_number:>7}"
                f"{_money(i.bank_amount):>14}{_money(i.system_amount):>14}  {i.detail}"
            )
        if len(diffs) > limit:
            out.append(f"... {len(diffs) - limit} more differences")
    return "\n".join(out)
