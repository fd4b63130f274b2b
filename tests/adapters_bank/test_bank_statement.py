"""Statement files in both formats: round trips, a malformed line named by file and line,
control totals that disagree refuse the whole file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from powerbus.adapters.bank import (
    DataLoss,
    FileFormatError,
    LineKind,
    LineStatus,
    PaymentChannel,
    StatementFormat,
    StatementLine,
    parse_statement,
    read_statement,
    render_statement,
    statement_file_name,
    write_statement,
)

DAY = dt.date(2026, 12, 4)
CREATED = dt.datetime(2026, 12, 5, 1)


def lines() -> list[StatementLine]:
    def line(n: int, txn: str, amount: int, **kw: object) -> StatementLine:
        base: dict[str, object] = dict(
            line_number=n,
            bank_txn_id=txn,
            account_id=f"31{n:08d}",
            amount=amount,
            kind=LineKind.COLLECTION,
            status=LineStatus.SUCCESS,
            txn_time=dt.datetime(2026, 12, 4, 9, n),
            channel=PaymentChannel.BANK_COUNTER,
            memo="张*",
        )
        base.update(kw)
        return StatementLine(**base)  # type: ignore[arg-type]

    return [
        line(2, "B001", 12_345),
        line(3, "B002", 500, status=LineStatus.FAILED),
        line(4, "B003", 8_000, channel=PaymentChannel.BANK_WITHHOLDING),
        line(5, "R001", 8_000, kind=LineKind.REVERSAL, original_txn_id="B003", memo="冲正"),
        line(6, "B004", 99, status=LineStatus.PROCESSING),
    ]


@pytest.mark.parametrize("fmt", list(StatementFormat))
def test_a_statement_round_trips(fmt: StatementFormat, tmp_path: Path) -> None:
    path = write_statement(tmp_path, "0102", DAY, lines(), fmt=fmt, created=CREATED)
    assert path.name == statement_file_name("0102", DAY, fmt)
    statement = read_statement(path)
    assert statement.lines == tuple(lines())
    assert (statement.line_count, statement.total_amount) == (5, 12_345)
    assert statement.bank_code == "0102" and statement.settlement_date == DAY
    assert len(statement.sha256) == 64
    assert not list(tmp_path.glob(".*"))  # the atomic write left no temporary file


def fixed_bytes() -> bytes:
    return render_statement("0102", DAY, lines(), fmt=StatementFormat.FIXED, created=CREATED)


def csv_bytes() -> bytes:
    return render_statement("0102", DAY, lines(), fmt=StatementFormat.CSV, created=CREATED)


def replace_line(data: bytes, number: int, new: bytes) -> bytes:
    rows = data.split(b"\n")
    rows[number - 1] = new
    return b"\n".join(rows)


def patch(data: bytes, number: int, offset: int, new: bytes) -> bytes:
    row = data.split(b"\n")[number - 1]
    return replace_line(data, number, row[:offset] + new + row[offset + len(new) :])


FIXED = "0102_COLLECTION_20261204.txt"
CSV = "0102_COLLECTION_20261204.csv"


@pytest.mark.parametrize(
    ("name", "damage", "line", "problem"),
    [
        (FIXED, lambda d: replace_line(d, 3, d.split(b"\n")[2][:50]), 3, "D record"),
        (
            FIXED,
            lambda d: replace_line(
                d, 4, d.split(b"\n")[3].replace(b"00000000008000", b"0000000000800x")
            ),
            4,
            "amount",
        ),
        (FIXED, lambda d: patch(d, 2, 55, b"Z"), 2, "kind: unknown code 'Z'"),
        (FIXED, lambda d: d.replace("张*".encode("gbk"), b"\x81\x20\x20", 1), 2, "not GBK"),
        (FIXED, lambda d: replace_line(d, 1, b"H0102"), 1, "header"),
        (FIXED, lambda d: b"\n".join(d.split(b"\n")[:-2]) + b"\n", 6, "trailer"),
        (CSV, lambda d: d.replace(b",12345,", b",12x45,"), 2, "amount"),
        (CSV, lambda d: d.replace(b"20261204090", b"20261304090", 1), 2, "txn_time"),
        (CSV, lambda d: d.replace(b"D,B002", b"D,B002,extra"), 3, "10 fields"),
        (CSV, lambda d: d.replace("张*".encode("gbk"), b"\xff\xfe", 1), 2, "not GBK"),
        (CSV, lambda d: d.replace(b",+12345", b",+12x45", 1), 1, "total"),
    ],
    ids=[
        "fixed-short",
        "fixed-amount",
        "fixed-kind",
        "fixed-gbk",
        "fixed-header",
        "fixed-no-trailer",
        "csv-amount",
        "csv-time",
        "csv-fields",
        "csv-gbk",
        "csv-header",
    ],
)
def test_a_malformed_line_is_named_by_file_and_line(name, damage, line, problem) -> None:  # type: ignore[no-untyped-def]
    data = damage(fixed_bytes() if name == FIXED else csv_bytes())
    with pytest.raises(FileFormatError) as caught:
        parse_statement(data, file_name=name)
    assert (caught.value.file, caught.value.line) == (name, line)
    assert str(caught.value).startswith(f"{name}:{line}: ")
    assert problem in str(caught.value)


@pytest.mark.parametrize("fmt", list(StatementFormat))
@pytest.mark.parametrize(
    "control", [(4, 12_345), (5, 12_346), (6, 0)], ids=["count", "total", "both"]
)
def test_control_totals_that_disagree_refuse_the_whole_file(
    fmt: StatementFormat, control: tuple[int, int]
) -> None:
    data = render_statement("0102", DAY, lines(), fmt=fmt, created=CREATED, control=control)
    with pytest.raises(DataLoss) as caught:
        parse_statement(data, file_name=statement_file_name("0102", DAY, fmt))
    assert caught.value.status.value == "DATA_LOSS"
    assert "control totals disagree" in str(caught.value) and "refused" in str(caught.value)


def test_a_trailer_that_disagrees_with_its_header_is_refused() -> None:
    data = fixed_bytes()
    rows = data.split(b"\n")
    rows[-2] = b"T%010d%+016d" % (5, 12_000)
    with pytest.raises(DataLoss, match="trailer 5 lines 12000 fen"):
        parse_statement(b"\n".join(rows), file_name=FIXED)


def test_an_empty_file_is_malformed() -> None:
    with pytest.raises(FileFormatError, match=":1: no header and trailer"):
        parse_statement(b"", file_name=FIXED)


def test_crlf_line_endings_are_accepted() -> None:
    statement = parse_statement(fixed_bytes().replace(b"\n", b"\r\n"), file_name=FIXED)
    assert statement.line_count == 5
