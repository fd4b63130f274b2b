"""Withholding (代扣) files: the utility's batch debit file and the bank's result file.

Both are fixed-width GBK with a header and a trailer carrying control totals, one record
per line (layouts below, widths in bytes). A malformed line raises
:class:`~powerbus.adapters.bank.errors.FileFormatError` with the file and line; totals
that disagree raise :class:`~powerbus.adapters.bank.errors.FileDataLoss` and nothing is read.

>>> import datetime as dt
>>> batch = WithholdingBatch(bank_code="0102", batch_id="B1", batch_date=dt.date(2026, 12, 4),
...     debits=(WithholdingDebit(seq=1, account_id="3100012345", bank_account="6222000011112222",
...                              account_name="张三", amount=8800, agreement_no="AG1"),))
>>> parse_batch(render_batch(batch), file_name="x.txt") == batch
True
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from powerbus.adapters.bank.errors import FileDataLoss, FileFormatError
from powerbus.adapters.bank.protocol.fields import Field, Kind, decode_fields, encode_fields
from powerbus.bus.kernel.errors import PowerbusError

__all__ = [
    "WithholdingBatch",
    "WithholdingDebit",
    "WithholdingResult",
    "WithholdingResults",
    "batch_file_name",
    "parse_batch",
    "parse_results",
    "render_batch",
    "render_results",
    "result_file_name",
    "write_file",
]

_TAG = Field("tag", 1)
_BATCH_H = (
    _TAG,
    Field("bank_code", 4),
    Field("batch_id", 20),
    Field("batch_date", 8, Kind.DATE),
    Field("count", 8, Kind.NUMBER),
    Field("total", 16, Kind.AMOUNT),
)
_BATCH_D = (
    _TAG,
    Field("seq", 8, Kind.NUMBER),
    Field("account_id", 20),
    Field("bank_account", 32),
    Field("account_name", 30, Kind.TEXT),
    Field("amount", 14, Kind.AMOUNT),
    Field("agreement_no", 20),
)
_BATCH_T = (_TAG, Field("count", 8, Kind.NUMBER), Field("total", 16, Kind.AMOUNT))
_RESULT_H = (
    _TAG,
    Field("bank_code", 4),
    Field("batch_id", 20),
    Field("batch_date", 8, Kind.DATE),
    Field("count", 8, Kind.NUMBER),
    Field("succeeded", 8, Kind.NUMBER),
    Field("total", 16, Kind.AMOUNT),
)
_RESULT_D = (
    _TAG,
    Field("seq", 8, Kind.NUMBER),
    Field("account_id", 20),
    Field("amount", 14, Kind.AMOUNT),
    Field("ok", 1, Kind.FLAG),
    Field("bank_txn_id", 20),
    Field("fail_code", 4),
    Field("fail_reason", 30, Kind.TEXT),
)
_RESULT_T = (
    _TAG,
    Field("count", 8, Kind.NUMBER),
    Field("succeeded", 8, Kind.NUMBER),
    Field("total", 16, Kind.AMOUNT),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class WithholdingDebit:
    """One debit asked of the bank under a withholding agreement (代扣协议)."""

    seq: int
    account_id: str  # 户号
    bank_account: str  # the customer's bank account number
    account_name: str
    amount: int  # fen
    agreement_no: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WithholdingBatch:
    bank_code: str
    batch_id: str
    batch_date: dt.date
    debits: tuple[WithholdingDebit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WithholdingResult:
    """What the bank did with one debit; ``bank_txn_id`` is the serial of a success."""

    seq: int
    account_id: str
    amount: int
    ok: bool
    bank_txn_id: str = ""
    fail_code: str = ""
    fail_reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WithholdingResults:
    bank_code: str
    batch_id: str
    batch_date: dt.date
    results: tuple[WithholdingResult, ...]

    @property
    def succeeded_total(self) -> int:
        return sum(r.amount for r in self.results if r.ok)


def batch_file_name(bank_code: str, day: dt.date, batch_id: str) -> str:
    return f"WH_{bank_code}_{day:%Y%m%d}_{batch_id}.txt"


def result_file_name(bank_code: str, day: dt.date, batch_id: str) -> str:
    return f"WHR_{bank_code}_{day:%Y%m%d}_{batch_id}.txt"


def _line(layout: tuple[Field, ...], tag: str, values: dict[str, Any]) -> bytes:
    return encode_fields(layout, {"tag": tag, **values})


def render_batch(batch: WithholdingBatch) -> bytes:
    """The batch debit file's bytes."""
    total = sum(d.amount for d in batch.debits)
    head = {
        "bank_code": batch.bank_code,
        "batch_id": batch.batch_id,
        "batch_date": batch.batch_date,
        "count": len(batch.debits),
        "total": total,
    }
    out = [_line(_BATCH_H, "H", head)]
    out += [_line(_BATCH_D, "D", _fields(d)) for d in batch.debits]
    out.append(_line(_BATCH_T, "T", {"count": len(batch.debits), "total": total}))
    return b"\n".join(out) + b"\n"


def render_results(results: WithholdingResults) -> bytes:
    """The result file's bytes."""
    ok = sum(1 for r in results.results if r.ok)
    totals = {"count": len(results.results), "succeeded": ok, "total": results.succeeded_total}
    head = {
        "bank_code": results.bank_code,
        "batch_id": results.batch_id,
        "batch_date": results.batch_date,
        **totals,
    }
    out = [_line(_RESULT_H, "H", head)]
    out += [_line(_RESULT_D, "D", _fields(r)) for r in results.results]
    out.append(_line(_RESULT_T, "T", totals))
    return b"\n".join(out) + b"\n"


def parse_batch(data: bytes, *, file_name: str) -> WithholdingBatch:
    """A batch debit file (the bank simulator reads these)."""
    head, rows, tail = _records(data, file_name, _BATCH_H, _BATCH_D, _BATCH_T)
    debits = tuple(WithholdingDebit(**_without_tag(r)) for r in rows)
    total = sum(d.amount for d in debits)
    _check(
        file_name,
        [
            (head["count"], tail["count"], len(debits), "lines"),
            (head["total"], tail["total"], total, "fen"),
        ],
    )
    return WithholdingBatch(
        bank_code=head["bank_code"],
        batch_id=head["batch_id"],
        batch_date=head["batch_date"],
        debits=debits,
    )


def parse_results(data: bytes, *, file_name: str) -> WithholdingResults:
    """A bank's result file (the bank node reads these and posts the successes)."""
    head, rows, tail = _records(data, file_name, _RESULT_H, _RESULT_D, _RESULT_T)
    results = tuple(WithholdingResult(**_without_tag(r)) for r in rows)
    parsed = WithholdingResults(
        bank_code=head["bank_code"],
        batch_id=head["batch_id"],
        batch_date=head["batch_date"],
        results=results,
    )
    ok = sum(1 for r in results if r.ok)
    _check(
        file_name,
        [
            (head["count"], tail["count"], len(results), "lines"),
            (head["succeeded"], tail["succeeded"], ok, "successes"),
            (head["total"], tail["total"], parsed.succeeded_total, "fen"),
        ],
    )
    return parsed


def write_file(directory: str | os.PathLike[str], name: str, data: bytes) -> Path:
    """Write ``data`` as ``directory/name`` atomically."""
    target = Path(directory) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, target)
    return target


T = TypeVar("T")


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def _without_tag(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "tag"}


def _decode(
    file_name: str, number: int, layout: tuple[Field, ...], tag: bytes, raw: bytes
) -> dict[str, Any]:
    width = sum(f.width for f in layout)
    if raw[:1] != tag or len(raw) != width:
        raise FileFormatError(
            file_name, number, f"expected a {tag.decode()} record of {width} bytes"
        )
    try:
        return decode_fields(layout, raw, base=0)
    except PowerbusError as exc:
        raise FileFormatError(file_name, number, exc.message) from None


def _records(
    data: bytes, file_name: str, h: tuple[Field, ...], d: tuple[Field, ...], t: tuple[Field, ...]
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) < 2:
        raise FileFormatError(file_name, max(len(lines), 1), "no header and trailer")

    def decode(n: int, layout: tuple[Field, ...], tag: bytes) -> dict[str, Any]:
        return _decode(file_name, n, layout, tag, lines[n - 1])

    head = decode(1, h, b"H")
    rows = [decode(n, d, b"D") for n in range(2, len(lines))]
    return head, rows, decode(len(lines), t, b"T")


def _check(file_name: str, checks: Sequence[tuple[int, int, int, str]]) -> None:
    for header, trailer, actual, unit in checks:
        if not header == trailer == actual:
            raise FileDataLoss(
                file_name,
                f"control totals disagree: header {header} {unit}, trailer {trailer}, "
                f"records {actual}; file refused",
            )
