"""Reading and writing statement files, all or nothing.

A malformed line raises :class:`~powerbus.adapters.bank.errors.FileFormatError` naming the
file and the line; control totals in the header or trailer that disagree with the lines
raise :class:`~powerbus.adapters.bank.errors.FileDataLoss`. Either way no
:class:`Statement` comes back, so nothing of a bad file can be half-applied.

>>> import datetime as dt
>>> data = render_statement("0102", dt.date(2026, 12, 4), [], fmt=StatementFormat.CSV,
...                         created=dt.datetime(2026, 12, 5, 1))
>>> data
b'H,0102,20261204,0,+0,20261205010000\\nT,0,+0\\n'
>>> parse_statement(data, file_name="0102_COLLECTION_20261204.csv").line_count
0
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from powerbus.adapters.bank._bulk import gc_paused
from powerbus.adapters.bank.errors import FileDataLoss, FileFormatError
from powerbus.adapters.bank.statement import csvfmt, fixed
from powerbus.adapters.bank.statement.model import (
    Statement,
    StatementFormat,
    StatementLine,
    net_total,
    statement_file_name,
)

__all__ = ["parse_statement", "read_statement", "render_statement", "write_statement"]


def format_of(file_name: str) -> StatementFormat:
    return StatementFormat.CSV if file_name.lower().endswith(".csv") else StatementFormat.FIXED


def parse_statement(
    data: bytes, *, file_name: str, fmt: StatementFormat | None = None
) -> Statement:
    """The statement in ``data`` (format from the name's suffix unless given)."""
    with gc_paused():
        return _parse(data, file_name, fmt or format_of(file_name))


def _parse(data: bytes, file_name: str, fmt: StatementFormat) -> Statement:
    if fmt is StatementFormat.CSV:
        try:
            text = data.decode("gbk")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise FileFormatError(
                file_name, line, f"not GBK: {data[exc.start : exc.end]!r}"
            ) from None
        head, lines, tail = _read(csvfmt.rows(text), file_name, csvfmt)
    else:
        rows = data.replace(b"\r\n", b"\n").split(b"\n")
        if rows and rows[-1] == b"":
            rows.pop()
        head, lines, tail = _read(rows, file_name, fixed)
    bank_code, day, count, total = head
    t_count, t_total = tail
    actual = net_total(lines)
    if not count == t_count == len(lines) or not total == t_total == actual:
        raise FileDataLoss(
            file_name,
            f"control totals disagree: header {count} lines {total} fen, trailer {t_count} "
            f"lines {t_total} fen, lines {len(lines)} lines {actual} fen; file refused",
        )
    return Statement(
        bank_code=bank_code,
        settlement_date=day,
        lines=tuple(lines),
        line_count=count,
        total_amount=total,
        file_name=file_name,
        sha256=hashlib.sha256(data).hexdigest(),
    )


R = TypeVar("R", contravariant=True)


class _Format(Protocol[R]):
    """What a format module (``fixed``, ``csvfmt``) offers for one record type ``R``."""

    def parse_header(self, row: R) -> fixed.Control: ...

    def parse_detail(self, row: R, line_number: int) -> StatementLine: ...

    def parse_trailer(self, row: R) -> tuple[int, int]: ...


def _read(
    rows: Sequence[R], file_name: str, fmt: _Format[R]
) -> tuple[fixed.Control, list[StatementLine], tuple[int, int]]:
    if len(rows) < 2:
        raise FileFormatError(file_name, max(len(rows), 1), "no header and trailer")
    number = 1
    try:
        head = fmt.parse_header(rows[0])
        lines = []
        for number in range(2, len(rows)):
            lines.append(fmt.parse_detail(rows[number - 1], number))
        number = len(rows)
        tail = fmt.parse_trailer(rows[-1])
    except ValueError as exc:
        raise FileFormatError(file_name, number, str(exc)) from None
    return head, lines, tail


def read_statement(path: str | os.PathLike[str]) -> Statement:
    """Read and parse a statement file; errors name the file and line."""
    p = Path(path)
    return parse_statement(p.read_bytes(), file_name=p.name)


def render_statement(
    bank_code: str,
    day: dt.date,
    lines: Sequence[StatementLine],
    *,
    fmt: StatementFormat,
    created: dt.datetime,
    control: tuple[int, int] | None = None,
) -> bytes:
    """A statement file's bytes; ``control`` overrides the (count, total) written, which
    only a test injecting a corrupt file should do."""
    count, total = control or (len(lines), net_total(lines))
    render = csvfmt.render if fmt is StatementFormat.CSV else fixed.render
    return render(bank_code, day, lines, count=count, total=total, created=created)


def write_statement(
    directory: str | os.PathLike[str],
    bank_code: str,
    day: dt.date,
    lines: Sequence[StatementLine],
    *,
    fmt: StatementFormat = StatementFormat.FIXED,
    created: dt.datetime,
) -> Path:
    """Write the statement into ``directory`` atomically (a reader never sees half a file)."""
    target = Path(directory) / statement_file_name(bank_code, day, fmt)
    data = render_statement(bank_code, day, lines, fmt=fmt, created=created)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, target)
    return target
