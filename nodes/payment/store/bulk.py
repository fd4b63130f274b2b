"""Inserting many rows fast: on SQLite straight through the driver's ``executemany``.

SQLAlchemy builds and processes parameters row by row, which costs more than SQLite's
own insert; the ledger writes four rows per payment, so that overhead decided how many
payments per second the store could post. On SQLite this module converts values the way
SQLAlchemy's SQLite types store them (datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff``, dates
ISO, booleans 0/1), so rows read back identically; on other databases it is an ordinary
``insert()``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["insert_many"]


def insert_many(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with every column of ``table`` that has no default)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    get = operator.itemgetter(*names)
    # Only the few typed columns need converting; the rest pass through as they are.
    fixes = [
        (index, convert)
        for index, name in enumerate(names)
        if (convert := _converter(table.c[name].type)) is not None
    ]
    values: list[Any] = []
    for row in rows:
        got = get(row)
        fields = list(got) if len(names) > 1 else [got]
        for index, convert in fixes:
            if fields[index] is not None:
                fields[index] = convert(fields[index])
        values.append(tuple(fields))
    conn.exec_driver_sql(sql, values)


def _converter(kind: sa.types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    if isinstance(kind, sa.DateTime):
        return _datetime
    if isinstance(kind, sa.Date):
        return _date
    if isinstance(kind, sa.Boolean):
        return int
    return None


def _datetime(value: dt.datetime) -> str:
    # What sqlalchemy.dialects.sqlite.DATETIME stores (it drops any zone; ours is UTC).
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _date(value: dt.date) -> str:
    return value.isoformat()
