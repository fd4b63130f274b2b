"""A bank statement (对账文件) as records: its lines and its control totals.

>>> line = StatementLine(line_number=2, bank_txn_id="T1", account_id="A1", amount=500,
...     kind=LineKind.COLLECTION, status=LineStatus.SUCCESS,
...     txn_time=dt.datetime(2026, 12, 4, 9), channel=PaymentChannel.BANK_COUNTER)
>>> net_total([line])
500
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from powerbus.adapters.bank.values import LineKind, LineStatus, PaymentChannel

__all__ = ["Statement", "StatementFormat", "StatementLine", "net_total", "statement_file_name"]


class StatementFormat(str, Enum):
    """How a statement file is written: fixed-width GBK lines or CSV (also GBK)."""

    FIXED = "fixed"
    CSV = "csv"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementLine:
    """One transaction line; ``line_number`` is its 1-based position in the file."""

    line_number: int
    bank_txn_id: str
    account_id: str
    amount: int  # fen, always positive; kind says which way
    kind: LineKind
    status: LineStatus
    txn_time: dt.datetime
    channel: PaymentChannel
    original_txn_id: str = ""  # for reversals: the collection reversed
    memo: str = ""  # free text (GBK), e.g. the masked customer name


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """A parsed statement whose control totals agreed with its lines."""

    bank_code: str
    settlement_date: dt.date
    lines: tuple[StatementLine, ...]
    line_count: int
    total_amount: int  # SUCCESS collections minus SUCCESS reversals, fen
    file_name: str
    sha256: str


def net_total(lines: Iterable[StatementLine]) -> int:
    """The control total of lines: successful collections minus successful reversals."""
    total = 0
    for line in lines:
        if line.status is LineStatus.SUCCESS:
            total += line.amount if line.kind is LineKind.COLLECTION else -line.amount
    return total


def statement_file_name(bank_code: str, day: dt.date, fmt: StatementFormat) -> str:
    """The file's name at the bank, e.g. ``0102_COLLECTION_20261204.txt``.

    >>> statement_file_name("0102", dt.date(2026, 12, 4), StatementFormat.CSV)
    '0102_COLLECTION_20261204.csv'
    """
    suffix = "csv" if fmt is StatementFormat.CSV else "txt"
    return f"{bank_code}_COLLECTION_{day:%Y%m%d}.{suffix}"
