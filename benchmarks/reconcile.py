"""Reconciliation of a 1,000,000-line statement (target: under 30 s).

Builds a bank statement file of N collection lines (fixed-width GBK; CSV as a second
row) and the ledger entries that match it, with a few of each discrepancy injected, then
times, separately and in total: parsing the file (control totals checked), and the pure
engine. ``python -m benchmarks.reconcile [N]``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import random
import sys
import time

from benchmarks.harness import environment, write_result
from powerbus.adapters.bank import (
    Category,
    LedgerEntry,
    LineKind,
    LineStatus,
    PaymentChannel,
    PaymentStatus,
    StatementFormat,
    StatementLine,
    Window,
    parse_statement,
    reconcile,
    render_statement,
)

BANK = "0102"
DAY = dt.date(2026, 12, 4)
TARGET_S = 30.0
# Every INJECT-th transaction gets one of the discrepancies, in turn.
INJECT = 1_000


def build(n: int, seed: int = 1) -> tuple[list[StatementLine], list[LedgerEntry], dict[str, int]]:
    rng = random.Random(seed)
    start = dt.datetime.combine(DAY, dt.time())
    lines: list[StatementLine] = []
    ledger: list[LedgerEntry] = []
    injected = dict.fromkeys(("amount", "status", "only_bank", "only_system", "transit"), 0)
    kinds = list(injected)
    for i in range(n):
        txn = f"B{i:019d}"
        amount = rng.randint(100, 500_000)
        at = start + dt.timedelta(seconds=i * 86_399 // max(n, 1))
        line: StatementLine | None = StatementLine(
            line_number=0,
            bank_txn_id=txn,
            account_id=f"31{i % 10**8:08d}",
            amount=amount,
            kind=LineKind.COLLECTION,
            status=LineStatus.SUCCESS,
            txn_time=at,
            channel=PaymentChannel.BANK_COUNTER,
        )
        entry: LedgerEntry | None = LedgerEntry(
            bank_code=BANK,
            bank_txn_id=txn,
            payment_id=f"P{i}",
            account_id=line.account_id,
            amount=amount,
            status=PaymentStatus.POSTED,
            paid_at=at,
            settlement_date=DAY,
        )
        if i % INJECT == INJECT - 1:
            kind = kinds[(i // INJECT) % len(kinds)]
            injected[kind] += 1
            assert line is not None and entry is not None
            if kind == "amount":
                entry = dataclasses.replace(entry, amount=amount + 1)
            elif kind == "status":
                entry = dataclasses.replace(entry, status=PaymentStatus.REVERSED)
            elif kind == "only_bank":
                entry = None
            elif kind == "only_system":
                line = None
            else:
                line = dataclasses.replace(line, status=LineStatus.PROCESSING)
        if line is not None:
            lines.append(line)
        if entry is not None:
            ledger.append(entry)
    return lines, ledger, injected


def measure(
    fmt: StatementFormat,
    lines: list[StatementLine],
    ledger: list[LedgerEntry],
    injected: dict[str, int],
) -> dict[str, object]:
    data = render_statement(BANK, DAY, lines, fmt=fmt, created=dt.datetime(2026, 12, 5, 1))
    name = f"{BANK}_COLLECTION_20261204.{'csv' if fmt is StatementFormat.CSV else 'txt'}"
    gc.collect()
    t0 = time.perf_counter()
    statement = parse_statement(data, file_name=name)
    t1 = time.perf_counter()
    report = reconcile(
        ledger, statement, Window(settlement_date=DAY), generated_at=dt.datetime(2026, 12, 5, 2)
    )
    t2 = time.perf_counter()
    counts = {t.category.value: t.count for t in report.totals}
    expected = {
        Category.AMOUNT_DIFF.value: injected["amount"],
        Category.STATUS_DIFF.value: injected["status"],
        Category.ONLY_IN_BANK.value: injected["only_bank"],
        Category.ONLY_IN_SYSTEM.value: injected["only_system"],
        Category.IN_TRANSIT.value: injected["transit"],
    }
    assert all(counts.get(k, 0) == v for k, v in expected.items()), (counts, expected)
    return {
        "format": fmt.value,
        "lines": statement.line_count,
        "file_mb": round(len(data) / 1e6, 1),
        "parse_s": round(t1 - t0, 2),
        "reconcile_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "lines_per_s": round(statement.line_count / (t2 - t0)),
        "categories": counts,
        "under_target": (t2 - t0) < TARGET_S,
    }


def main(n: int = 1_000_000) -> str:
    lines, ledger, injected = build(n)
    rows = [measure(fmt, lines, ledger, injected) for fmt in StatementFormat]
    table = "\n".join(
        [
            f"Reconciliation of a {n:,}-line statement (target < {TARGET_S:.0f} s, parse + engine)",
            "",
            "| format | lines | file MB | parse s | reconcile s | total s | lines/s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        + [
            f"| {r['format']} | {r['lines']:,} | {r['file_mb']} | {r['parse_s']} | "
            f"{r['reconcile_s']} | {r['total_s']} | {r['lines_per_s']:,} |"
            for r in rows
        ]
    )
    data = {
        "environment": environment(),
        "target_s": TARGET_S,
        "statement_lines": n,
        "injected": injected,
        "results": rows,
    }
    return str(write_result("reconcile", data, table))


if __name__ == "__main__":
    print(f"wrote {main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)}")
