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

from powerbus.adapters.bank.reconcile.model import (
    ItemResolution,
    ReconciliationItem,
    ReconciliationReport,
)
from powerbus.adapters.bank.values import format_fen

__all__ = ["render_item", "render_table", "report_to_json", "resolution_json"]


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
        "item_number": item.item_number,
        "bank_time": item.bank_time.isoformat() if item.bank_time else None,
        "channel": item.channel.name if item.channel else None,
        "resolution": resolution_json(item.resolution),
    }


def resolution_json(done: ItemResolution | None) -> dict[str, Any] | None:
    """An operator's resolution as a JSON-ready dict (None when unresolved)."""
    if done is None:
        return None
    return {
        "action": done.action.value,
        "reason": done.reason,
        "operator": done.operator,
        "resolved_at": done.resolved_at.isoformat(),
        "category": done.category.value,
        "ledger_txn_ids": list(done.ledger_txn_ids),
        "payment_id": done.payment_id,
        "written_off_fen": done.written_off,
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
        "report_id": report.report_id,
        "unresolved_count": len(report.unresolved()),
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
    """Totals per category, then up to ``limit`` differences, each with its item number
    (what ``powerbus reconcile resolve --item`` takes), its detail and, once resolved,
    its resolution; every line fits 80 columns but for long free text."""
    state = "BALANCED" if report.balanced else "DIFFERENCES"
    diffs = report.differences()
    if diffs:
        open_ = len(report.unresolved())
        state += f", {open_} unresolved" if open_ else ", all resolved"
    out = [
        f"对账 bank {report.bank_code} settlement {report.settlement_date}: {state}",
        *([f"report {report.report_id}"] if report.report_id else []),
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
    if diffs:
        head = f"{'#':>5}  {'category':<15}{'serial':<22}{'line':>6}{'bank':>14}{'ledger':>14}"
        out += ["", head]
        for i in diffs[:limit]:
            out += render_item(i)
        if len(diffs) > limit:
            out.append(f"... {len(diffs) - limit} more differences")
    return "\n".join(out)


def render_item(item: ReconciliationItem) -> list[str]:
    """One difference as table lines: the figures, the detail, and its resolution."""
    number = str(item.item_number) if item.item_number else ""
    lines = [
        f"{number:>5}  {item.category.value:<15}{item.bank_txn_id:<22}{item.line_number:>6}"
        f"{_money(item.bank_amount):>14}{_money(item.system_amount):>14}",
    ]
    if item.detail:
        lines.append(f"       {item.detail}")
    done = item.resolution
    if done is not None:
        when = done.resolved_at.strftime("%Y-%m-%d %H:%M")
        txns = ", ".join(str(t) for t in done.ledger_txn_ids) or "none"
        lines.append(f"       resolved: {done.action.value} by {done.operator} at {when}")
        lines.append(f"       ledger txn {txns}" + _written_off(done))
        lines.append(f"       reason: {done.reason}")
    return lines


def _written_off(done: ItemResolution) -> str:
    return f"; written off {format_fen(done.written_off)} yuan" if done.written_off else ""
