"""The CSV statement format (GBK): ``H,bank,YYYYMMDD,count,total,created``, then
``D,serial,account,amount,kind,status,YYYYMMDDHHMMSS,channel,original,memo`` per
transaction, then ``T,count,total``."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Sequence
from typing import TypeVar

from powerbus.adapters.bank.statement.fixed import Control
from powerbus.adapters.bank.statement.model import StatementLine
from powerbus.adapters.bank.values import LineKind, LineStatus, PaymentChannel

__all__ = ["parse_detail", "parse_header", "parse_trailer", "render", "rows"]

T = TypeVar("T")
_KINDS = {k.value: k for k in LineKind}
_STATUSES = {s.value: s for s in LineStatus}
_CHANNELS = {c.value: c for c in PaymentChannel}


def rows(text: str) -> list[list[str]]:
    """The file's records, one per line."""
    return list(csv.reader(io.StringIO(text, newline="")))


@functools.lru_cache(maxsize=100_000)
def _ts(raw: str) -> dt.datetime:
    # A day's lines share their seconds: each is parsed once (see fixed._ts).
    try:
        if len(raw) != 14:
            raise ValueError(raw)
        return dt.datetime.strptime(raw, "%Y%m%d%H%M%S")
    except ValueError:
        raise ValueError(f"txn_time: not YYYYMMDDHHMMSS: {raw!r}") from None


def _int(value: str, name: str, *, signed: bool = False) -> int:
    digits = value[1:] if signed and value[:1] in ("+", "-") else value
    if not digits.isdigit():
        raise ValueError(f"{name}: not a number: {value!r}")
    return int(value)


def _code(table: dict[str, T], raw: str, name: str) -> T:
    try:
        return table[raw]
    except KeyError:
        raise ValueError(f"{name}: unknown code {raw!r}") from None


def parse_header(row: list[str]) -> Control:
    if len(row) != 6 or row[0] != "H":
        raise ValueError(f"header: expected 6 fields starting with H, got {len(row)}")
    try:
        day = dt.datetime.strptime(row[2], "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"settlement_date: not YYYYMMDD: {row[2]!r}") from None
    return row[1], day, _int(row[3], "line_count"), _int(row[4], "total", signed=True)


def parse_trailer(row: list[str]) -> tuple[int, int]:
    if len(row) != 3 or row[0] != "T":
        raise ValueError(f"trailer: expected 3 fields starting with T, got {len(row)}")
    return _int(row[1], "line_count"), _int(row[2], "total", signed=True)


def parse_detail(row: list[str], line_number: int) -> StatementLine:
    if len(row) != 10 or row[0] != "D":
        raise ValueError(f"expected 10 fields starting with D, got {len(row)}")
    _, txn, account, amount, kind, status, ts, channel, original, memo = row
    if not txn:
        raise ValueError("bank_txn_id: empty")
    kind_v = _code(_KINDS, kind, "kind")
    status_v = _code(_STATUSES, status, "status")
    channel_v = _code(_CHANNELS, channel, "channel")
    txn_time = _ts(ts)
    return StatementLine(
        line_number=line_number,
        bank_txn_id=txn,
        account_id=account,
        amount=_int(amount, "amount"),
        kind=kind_v,
        status=status_v,
        txn_time=txn_time,
        channel=channel_v,
        original_txn_id=original,
        memo=memo,
    )


def render(
    bank_code: str,
    day: dt.date,
    lines: Sequence[StatementLine],
    *,
    count: int,
    total: int,
    created: dt.datetime,
) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["H", bank_code, f"{day:%Y%m%d}", count, f"{total:+d}", f"{created:%Y%m%d%H%M%S}"]
    )
    for x in lines:
        writer.writerow(
            [
                "D",
                x.bank_txn_id,
                x.account_id,
                x.amount,
                x.kind.value,
                x.status.value,
                f"{x.txn_time:%Y%m%d%H%M%S}",
                x.channel.value,
                x.original_txn_id,
                x.memo,
            ]
        )
    writer.writerow(["T", count, f"{total:+d}"])
    return out.getvalue().encode("gbk")
