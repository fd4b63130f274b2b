"""Reading and writing statement files, all or nothing.

A malformed line raises :class:`~powerbus.adapters.bank.errors.FileFormatError` naming the
file and the line; control totals in the header or trailer that disagree with the lines
raise :class:`~powerbus.adapters.bank.errors.DataLoss`. Either way no
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

from powerbus.adapters.bank._bulk import gc_paused
from powerbus.adapters.bank.errors import DataLoss, FileFormatError
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
        records: Sequence[object] = csvfmt.rows(text)
        header, trailer, detail = csvfmt.parse_header, csvfmt.parse_trailer, csvfmt.parse_detail
    else:
        records = data.replace(b"\r\n", b"\n").split(b"\n")
        if records and records[-1] == b"":
            records = records[:-1]
        header, trailer, detail = fixed.parse_header, fixed.parse_trailer, fixed.parse_detail  # type: ignore[assignment]
    if len(records) < 2:
        raise FileFormatError(file_name, max(len(records), 1), "no header and trailer")
    last = len(records)
    try:
        bank_code, day, count, total = header(records[0])  # type: ignore[arg-type]
    except ValueError as exc:
        raise FileFormatError(file_name, 1, str(exc)) from None
    lines: list[StatementLine] = []
    number = 1
    try:
        for number in range(2, last):
            lines.append(detail(records[number - 1], number))  # type: ignore[arg-type]
        number = last
        t_count, t_total = trailer(records[last - 1])  # type: ignore[arg-type]
    except ValueError as exc:
        raise FileFormatError(file_name, number, str(exc)) from None
    actual = net_total(lines)
    if not count == t_count == len(lines) or not total == t_total == actual:
        raise DataLoss(
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
