"""Reconciliation: a clean day balances; each kind of discrepancy injected into a
statement file (or the ledger) is found and classified, and only it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerbus.adapters.bank import (
    Category,
    LedgerEntry,
    LineKind,
    LineStatus,
    PaymentChannel,
    PaymentStatus,
    Statement,
    StatementFormat,
    StatementLine,
    Window,
    parse_statement,
    reconcile,
    render_statement,
    render_table,
    report_to_json,
)
from powerbus.bus.kernel.errors import InvalidArgument

BANK = "0102"
DAY = dt.date(2026, 12, 4)
NOW = dt.datetime(2026, 12, 5, 2)


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))


def line(txn: str, amount: int, **kw: object) -> StatementLine:
    base: dict[str, object] = dict(
        line_number=0,
        bank_txn_id=txn,
        account_id="3100000001",
        amount=amount,
        kind=LineKind.COLLECTION,
        status=LineStatus.SUCCESS,
        txn_time=at(10),
        channel=PaymentChannel.BANK_COUNTER,
    )
    base.update(kw)
    return StatementLine(**base)  # type: ignore[arg-type]


def entry(txn: str, amount: int, **kw: object) -> LedgerEntry:
    base: dict[str, object] = dict(
        bank_code=BANK,
        bank_txn_id=txn,
        payment_id=f"P-{txn}",
        account_id="3100000001",
        amount=amount,
        status=PaymentStatus.POSTED,
        paid_at=at(10),
        settlement_date=DAY,
    )
    base.update(kw)
    return LedgerEntry(**base)  # type: ignore[arg-type]


def clean_day() -> tuple[list[StatementLine], list[LedgerEntry]]:
    lines = [line(f"B{n:03d}", 1_000 + n) for n in range(20)]
    return lines, [entry(x.bank_txn_id, x.amount) for x in lines]


def statement_file(lines: list[StatementLine], fmt: StatementFormat) -> Statement:
    """Through a real file, so line numbers and totals are the file's own."""
    data = render_statement(BANK, DAY, lines, fmt=fmt, created=NOW)
    return parse_statement(data, file_name=f"{BANK}_COLLECTION_20261204.{fmt.value}")


def run(
    lines: list[StatementLine],
    ledger: list[LedgerEntry],
    fmt: StatementFormat = StatementFormat.FIXED,
):  # type: ignore[no-untyped-def]
    return reconcile(
        ledger, statement_file(lines, fmt), Window(settlement_date=DAY), generated_at=NOW
    )


def categories(report) -> dict[str, Category]:  # type: ignore[no-untyped-def]
    return {i.bank_txn_id: i.category for i in report.items}


@pytest.mark.parametrize("fmt", list(StatementFormat))
def test_a_clean_day_balances(fmt: StatementFormat) -> None:
    lines, ledger = clean_day()
    report = run(lines, ledger, fmt)
    assert report.balanced and report.differences() == ()
    assert [(t.category, t.count) for t in report.totals] == [(Category.MATCHED, 20)]
    assert report.bank_total == report.system_total == sum(x.amount for x in lines)


def only_difference(report, txn: str, category: Category):  # type: ignore[no-untyped-def]
    diffs = report.differences()
    assert [(d.bank_txn_id, d.category) for d in diffs] == [(txn, category)]
    assert not report.balanced
    return diffs[0]


@pytest.mark.parametrize("fmt", list(StatementFormat))
def test_amount_diff(fmt: StatementFormat) -> None:
    lines, ledger = clean_day()
    lines[5] = dataclasses.replace(lines[5], amount=lines[5].amount + 100)
    item = only_difference(run(lines, ledger, fmt), "B005", Category.AMOUNT_DIFF)
    assert (item.bank_amount, item.system_amount) == (1_105, 1_005)
    assert item.line_number == 7  # header is line 1, B000 line 2
    assert item.detail == "amount 1105 fen at bank, 1005 fen posted"


def test_status_diff_reversed_here_only() -> None:
    lines, ledger = clean_day()
    ledger[3] = dataclasses.replace(ledger[3], status=PaymentStatus.REVERSED)
    only_difference(run(lines, ledger), "B003", Category.STATUS_DIFF)


def test_status_diff_failed_at_the_bank_but_posted_here() -> None:
    lines, ledger = clean_day()
    lines[4] = dataclasses.replace(lines[4], status=LineStatus.FAILED)
    item = only_difference(run(lines, ledger), "B004", Category.STATUS_DIFF)
    assert item.bank_status is LineStatus.FAILED and item.system_status is PaymentStatus.POSTED


def test_status_diff_reversed_at_the_bank_but_posted_here() -> None:
    lines, ledger = clean_day()
    lines.append(line("R900", lines[2].amount, kind=LineKind.REVERSAL, original_txn_id="B002"))
    only_difference(run(lines, ledger), "B002", Category.STATUS_DIFF)


def test_only_in_bank() -> None:
    lines, ledger = clean_day()
    del ledger[7]
    item = only_difference(run(lines, ledger), "B007", Category.ONLY_IN_BANK)
    assert item.system_amount is None and item.payment_id == ""


def test_only_in_system() -> None:
    lines, ledger = clean_day()
    del lines[9]
    item = only_difference(run(lines, ledger), "B009", Category.ONLY_IN_SYSTEM)
    assert item.line_number == 0 and item.bank_amount is None


def test_a_serial_listed_twice_is_only_in_bank() -> None:
    lines, ledger = clean_day()
    lines.append(lines[1])
    item = only_difference(run(lines, ledger), "B001", Category.ONLY_IN_BANK)
    assert "first at line 3" in item.detail


def test_in_transit_is_not_a_difference() -> None:
    lines, ledger = clean_day()
    lines[6] = dataclasses.replace(lines[6], status=LineStatus.PROCESSING)
    ledger.append(
        entry(
            "B999",
            77,
            paid_at=at(0, 20, DAY + dt.timedelta(days=1)),
            settlement_date=DAY + dt.timedelta(days=1),
        )
    )
    report = run(lines, ledger)
    assert report.balanced
    assert categories(report)["B006"] is Category.IN_TRANSIT
    assert categories(report)["B999"] is Category.IN_TRANSIT


def test_reversals_net_out_on_both_sides() -> None:
    lines, ledger = clean_day()
    lines.append(line("R001", lines[1].amount, kind=LineKind.REVERSAL, original_txn_id="B001"))
    ledger[1] = dataclasses.replace(ledger[1], status=PaymentStatus.REVERSED)
    # Reversed at the bank and never posted here (the reversal overtook it).
    lines.append(line("B500", 300))
    lines.append(line("R500", 300, kind=LineKind.REVERSAL, original_txn_id="B500"))
    # Posted and reversed here, never at the bank.
    ledger.append(entry("B600", 400, status=PaymentStatus.REVERSED))
    report = run(lines, ledger)
    assert report.balanced, render_table(report)
    assert {categories(report)[t] for t in ("B001", "B500", "B600")} == {Category.MATCHED}
    assert report.bank_total == report.system_total


def test_a_reversal_of_an_earlier_days_collection() -> None:
    lines, ledger = clean_day()
    earlier = entry(
        "A001",
        900,
        status=PaymentStatus.REVERSED,
        paid_at=at(9, 0, DAY - dt.timedelta(days=1)),
        settlement_date=DAY - dt.timedelta(days=1),
    )
    lines.append(line("R777", 900, kind=LineKind.REVERSAL, original_txn_id="A001"))
    assert run(lines, [*ledger, earlier]).balanced
    # Not yet reversed here: a status difference; unknown here: the bank has a reversal
    # of money never posted.
    posted = dataclasses.replace(earlier, status=PaymentStatus.POSTED)
    only_difference(run(lines, [*ledger, posted]), "A001", Category.STATUS_DIFF)
    only_difference(run(lines, ledger), "A001", Category.ONLY_IN_BANK)


def test_cross_midnight_payments_are_no_false_differences() -> None:
    lines, ledger = clean_day()
    # Paid 23:59:40 by the utility's clock, on the bank's statement of the next day:
    # reconciling today it is in transit, not a one-sided entry.
    late = entry(
        "B800",
        555,
        paid_at=at(23, 59) + dt.timedelta(seconds=40),
        settlement_date=DAY + dt.timedelta(days=1),
    )
    assert categories(run(lines, [*ledger, late]))["B800"] is Category.IN_TRANSIT
    # Paid 00:00:20 by the utility's clock without a settlement date, but the bank booked
    # it on today's statement: the window finds it.
    early = entry(
        "B801",
        556,
        paid_at=at(0, 0, DAY + dt.timedelta(days=1)) + dt.timedelta(seconds=20),
        settlement_date=None,
    )
    report = run([*lines, line("B801", 556)], [*ledger, early])
    assert report.balanced and categories(report)["B801"] is Category.MATCHED
    # Yesterday's late payment, already on yesterday's statement: not today's business.
    yesterday = entry(
        "B802",
        557,
        paid_at=at(23, 50, DAY - dt.timedelta(days=1)),
        settlement_date=DAY - dt.timedelta(days=1),
    )
    assert "B802" not in categories(run(lines, [*ledger, yesterday]))
    # Outside the window and not of this date: ignored.
    far = entry("B803", 1, paid_at=at(12, 0, DAY + dt.timedelta(days=3)), settlement_date=None)
    assert "B803" not in categories(run(lines, [*ledger, far]))


def test_entries_of_other_banks_are_ignored() -> None:
    lines, ledger = clean_day()
    assert run(lines, [*ledger, entry("X1", 5, bank_code="0105")]).balanced


def test_every_discrepancy_at_once_is_counted_per_category() -> None:
    lines, ledger = clean_day()
    lines[0] = dataclasses.replace(lines[0], amount=1)
    ledger[1] = dataclasses.replace(ledger[1], status=PaymentStatus.REVERSED)
    del ledger[2]
    del lines[3]
    lines[10] = dataclasses.replace(lines[10], status=LineStatus.PROCESSING)
    report = run(lines, ledger)
    counts = {t.category: t.count for t in report.totals}
    assert counts == {
        Category.MATCHED: 15,
        Category.AMOUNT_DIFF: 1,
        Category.STATUS_DIFF: 1,
        Category.ONLY_IN_BANK: 1,
        Category.ONLY_IN_SYSTEM: 1,
        Category.IN_TRANSIT: 1,
    }
    data = report_to_json(report, differences_only=True)
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert len(data["items"]) == 4 and data["balanced"] is False
    table = render_table(report)
    assert "DIFFERENCES" in table and "ONLY_IN_SYSTEM" in table and "B003" in table


def test_the_window_must_be_the_statements_date() -> None:
    lines, ledger = clean_day()
    with pytest.raises(InvalidArgument, match="window"):
        reconcile(
            ledger,
            statement_file(lines, StatementFormat.FIXED),
            Window(settlement_date=DAY + dt.timedelta(days=1)),
            generated_at=NOW,
        )


amounts = st.integers(min_value=1, max_value=10**9)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(amounts, st.sampled_from(["ok", "reversed", "failed"])), min_size=0, max_size=40
    )
)
def test_consistent_books_always_balance(txns: list[tuple[int, str]]) -> None:
    lines: list[StatementLine] = []
    ledger: list[LedgerEntry] = []
    for n, (amount, fate) in enumerate(txns):
        txn = f"T{n:05d}"
        status = LineStatus.FAILED if fate == "failed" else LineStatus.SUCCESS
        lines.append(line(txn, amount, status=status))
        if fate == "reversed":
            lines.append(line(f"R{n:05d}", amount, kind=LineKind.REVERSAL, original_txn_id=txn))
        if fate != "failed":
            state = PaymentStatus.REVERSED if fate == "reversed" else PaymentStatus.POSTED
            ledger.append(entry(txn, amount, status=state))
    report = run(lines, ledger)
    assert report.balanced
    assert sum(t.count for t in report.totals) == len(report.items) == len(txns)
    assert report.bank_total == report.system_total
    for total in report.totals:  # every category the books agree on agrees in money too
        assert total.bank_amount == total.system_amount, render_table(report)


def test_totals_count_only_money_that_moved() -> None:
    """A collection the payment node refused (the bank lists it FAILED, the ledger never
    posted it) and one reversed on both sides are MATCHED, and moved no money: the
    MATCHED row must not show their amounts on the bank side beside a ledger 0."""
    lines, ledger = clean_day()
    lines.append(line("F001", 4_321, status=LineStatus.FAILED))
    lines.append(line("B900", 700))
    lines.append(line("R900", 700, kind=LineKind.REVERSAL, original_txn_id="B900"))
    ledger.append(entry("B900", 700, status=PaymentStatus.REVERSED))
    report = run(lines, ledger)
    assert report.balanced
    matched = {t.category: t for t in report.totals}[Category.MATCHED]
    assert matched.count == 22
    assert matched.bank_amount == matched.system_amount == sum(e.amount for e in ledger[:20])
    row = next(r for r in render_table(report).splitlines() if r.startswith("MATCHED"))
    assert row.split()[2] == row.split()[3], row
