"""Withholding (代扣) files: batch and result round trips, malformed lines named,
control totals that disagree refuse the whole file."""

from __future__ import annotations

import datetime as dt

import pytest

from powerbus.adapters.bank import (
    DataLoss,
    FileFormatError,
    WithholdingBatch,
    WithholdingDebit,
    WithholdingResult,
    WithholdingResults,
    parse_batch,
    parse_results,
    render_batch,
    render_results,
)

DAY = dt.date(2026, 12, 4)


def batch() -> WithholdingBatch:
    debits = tuple(
        WithholdingDebit(
            seq=n,
            account_id=f"31{n:08d}",
            bank_account=f"62220000{n:08d}",
            account_name="欧阳娜娜" if n % 2 else "王五",
            amount=1_000 * n,
            agreement_no=f"AG{n:06d}",
        )
        for n in range(1, 6)
    )
    return WithholdingBatch(bank_code="0102", batch_id="B20261204", batch_date=DAY, debits=debits)


def results() -> WithholdingResults:
    rows = tuple(
        WithholdingResult(
            seq=n,
            account_id=f"31{n:08d}",
            amount=1_000 * n,
            ok=n != 3,
            bank_txn_id=f"W{n:05d}" if n != 3 else "",
            fail_code="" if n != 3 else "E051",
            fail_reason="" if n != 3 else "余额不足",
        )
        for n in range(1, 6)
    )
    return WithholdingResults(bank_code="0102", batch_id="B20261204", batch_date=DAY, results=rows)


def test_batch_and_result_files_round_trip() -> None:
    assert parse_batch(render_batch(batch()), file_name="WH.txt") == batch()
    parsed = parse_results(render_results(results()), file_name="WHR.txt")
    assert parsed == results()
    assert parsed.succeeded_total == 12_000


def test_a_malformed_result_line_is_named() -> None:
    rows = render_results(results()).split(b"\n")
    rows[3] = rows[3][:40] + b"X" + rows[3][41:]  # inside the amount of seq 2
    with pytest.raises(FileFormatError) as caught:
        parse_results(b"\n".join(rows), file_name="WHR_0102.txt")
    assert (caught.value.file, caught.value.line) == ("WHR_0102.txt", 4)
    assert "amount" in str(caught.value)


def test_gbk_garbage_in_a_name_is_named() -> None:
    data = render_batch(batch()).replace("王五".encode("gbk"), b"\x81\x20\x81\x20", 1)
    with pytest.raises(FileFormatError, match=r"WH.txt:3: account_name: at byte 61: not text"):
        parse_batch(data, file_name="WH.txt")


def test_totals_that_disagree_refuse_the_file() -> None:
    rows = render_results(results()).split(b"\n")
    del rows[2]  # a success line lost in transfer
    with pytest.raises(DataLoss, match="control totals disagree: header 5 lines"):
        parse_results(b"\n".join(rows), file_name="WHR.txt")
    rows = render_batch(batch()).split(b"\n")
    rows[-2] = rows[-2][:9] + b"%016d" % 1
    with pytest.raises(DataLoss, match="trailer 1"):
        parse_batch(b"\n".join(rows), file_name="WH.txt")
