"""The fixed-width GBK statement format: a header line, one line per transaction, a trailer.

========  ==========================================================================
record    fields (width in bytes)
========  ==========================================================================
``H``     bank code 4, settlement date 8, line count 10, net total 16 (sign + 15
          digits), created 14
``D``     serial 20, account 20, amount 14, kind 1 (C/R), status 1 (S/F/P/R), time 14,
          channel 1, original serial 20, memo 20 (GBK)
``T``     line count 10, net total 16
========  ==========================================================================
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
from collections.abc import Sequence
from typing import TypeVar

from powerbus.adapters.bank.statement.model import StatementLine
from powerbus.adapters.bank.values import LineKind, LineStatus, PaymentChannel

__all__ = ["Control", "parse_detail", "parse_header", "parse_trailer", "render"]

_DETAIL = struct.Struct("20s20s14s1s1s14s1s20s20s")
DETAIL_SIZE = 1 + _DETAIL.size
T = TypeVar("T")
_KINDS = {k.value.encode(): k for k in LineKind}
_STATUSES = {s.value.encode(): s for s in LineStatus}
_CHANNELS = {c.value.encode(): c for c in PaymentChannel}

Control = tuple[str, dt.date, int, int]  # bank code, date, count, net total


# A day's lines share their seconds (a million lines, 86,400 seconds): parse each once.
@functools.lru_cache(maxsize=100_000)
def _ts(raw: bytes) -> dt.datetime:
    if len(raw) != 14 or not raw.isdigit():
        raise ValueError(f"txn_time: not YYYYMMDDHHMMSS: {raw!r}")
    return dt.datetime(
        int(raw[0:4]),
        int(raw[4:6]),
        int(raw[6:8]),
        int(raw[8:10]),
        int(raw[10:12]),
        int(raw[12:14]),
    )


def _signed(raw: bytes, name: str) -> int:
    if len(raw) != 16 or raw[:1] not in (b"+", b"-") or not raw[1:].isdigit():
        raise ValueError(f"{name}: not a signed 16-byte amount: {raw!r}")
    return int(raw)


def _count(raw: bytes) -> int:
    if len(raw) != 10 or not raw.isdigit():
        raise ValueError(f"line_count: not 10 digits: {raw!r}")
    return int(raw)


def _code(table: dict[bytes, T], raw: bytes, name: str) -> T:
    try:
        return table[raw]
    except KeyError:
        raise ValueError(f"{name}: unknown code {raw.decode('ascii', 'replace')!r}") from None


def parse_header(raw: bytes) -> Control:
    """``H`` line → (bank code, date, count, total); ``ValueError`` names the field."""
    if len(raw) != 53 or raw[:1] != b"H":
        raise ValueError(f"header: expected an H record of 53 bytes, got {len(raw)}")
    try:
        day = dt.datetime.strptime(raw[5:13].decode("ascii"), "%Y%m%d").date()
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"settlement_date: not YYYYMMDD: {raw[5:13]!r}") from None
    return (
        raw[1:5].decode("ascii", "replace"),
        day,
        _count(raw[13:23]),
        _signed(raw[23:39], "total"),
    )


def parse_trailer(raw: bytes) -> tuple[int, int]:
    """``T`` line → (count, total)."""
    if len(raw) != 27 or raw[:1] != b"T":
        raise ValueError(f"trailer: expected a T record of 27 bytes, got {len(raw)}")
    return _count(raw[1:11]), _signed(raw[11:27], "total")


def parse_detail(raw: bytes, line_number: int) -> StatementLine:
    """``D`` line → a statement line; ``ValueError`` names the field that is wrong."""
    if len(raw) != DETAIL_SIZE or raw[:1] != b"D":
        raise ValueError(f"expected a D record of {DETAIL_SIZE} bytes, got {len(raw)}")
    txn, account, amount, kind, status, ts, channel, original, memo = _DETAIL.unpack_from(raw, 1)
    if not amount.isdigit():
        raise ValueError(f"amount: not digits: {amount!r}")
    kind_v = _code(_KINDS, kind, "kind")
    status_v = _code(_STATUSES, status, "status")
    channel_v = _code(_CHANNELS, channel, "channel")
    try:
        memo_text = memo.rstrip(b" ").decode("gbk")
        txn_id = txn.rstrip(b" ").decode("ascii")
        account_id = account.rstrip(b" ").decode("ascii")
        original_id = original.rstrip(b" ").decode("ascii")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"text field: not GBK/ASCII: {exc.object[exc.start : exc.end]!r}"
        ) from None
    if not txn_id:
        raise ValueError("bank_txn_id: empty")
    return StatementLine(
        line_number=line_number,
        bank_txn_id=txn_id,
        account_id=account_id,
        amount=int(amount),
        kind=kind_v,
        status=status_v,
        txn_time=_ts(ts),
        channel=channel_v,
        original_txn_id=original_id,
        memo=memo_text,
    )


def _text(value: str, width: int, encoding: str = "ascii") -> bytes:
    raw = value.encode(encoding)
    if len(raw) > width:
        raise ValueError(f"{value!r} does not fit in {width} bytes")
    return raw.ljust(width, b" ")


def render(
    bank_code: str,
    day: dt.date,
    lines: Sequence[StatementLine],
    *,
    count: int,
    total: int,
    created: dt.datetime,
) -> bytes:
    """The file's bytes with the given control totals."""
    out = [
        b"H%s%s%010d%+016d%s"
        % (
            _text(bank_code, 4),
            day.strftime("%Y%m%d").encode(),
            count,
            total,
            created.strftime("%Y%m%d%H%M%S").encode(),
        )
    ]
    for line in lines:
        out.append(
            b"D%s%s%014d%s%s%s%s%s%s"
            % (
                _text(line.bank_txn_id, 20),
                _text(line.account_id, 20),
                line.amount,
                line.kind.value.encode(),
                line.status.value.encode(),
                line.txn_time.strftime("%Y%m%d%H%M%S").encode(),
                line.channel.value.encode(),
                _text(line.original_txn_id, 20),
                _text(line.memo, 20, "gbk"),
            )
        )
    out.append(b"T%010d%+016d" % (count, total))
    return b"\n".join(out) + b"\n"
