"""Inserting many rows fast: on SQLite straight through the driver's ``executemany``, on
PostgreSQL (psycopg 3) by ``COPY … FROM STDIN``.

SQLAlchemy builds and processes parameters row by row, which costs more than SQLite's
own insert; the ledger writes four rows per payment, so that overhead decided how many
payments per second the store could post. On SQLite this module converts values the way
SQLAlchemy's SQLite types store them (datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff``, dates
ISO, booleans 0/1), so rows read back identically; a value repeated in a batch (the
batch's one timestamp) is converted once. On PostgreSQL an ``executemany`` of INSERTs is
one statement per row on the wire (psycopg pipelines them, the server still parses and
executes each): 1k rows/s where ``COPY`` streams the batch as one statement, in the same
transaction, with psycopg's own typed dumpers. Other databases get an ordinary
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
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy(conn, table, rows)
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
    done: dict[Any, Any] = {}  # value -> stored form: a batch repeats its timestamp
    for row in rows:
        got = get(row)
        fields = list(got) if len(names) > 1 else [got]
        for index, convert in fixes:
            value = fields[index]
            if value is not None:
                stored = done.get(value)
                if stored is None:
                    stored = done[value] = convert(value)
                fields[index] = stored
        values.append(tuple(fields))
    conn.exec_driver_sql(sql, values)


def _copy(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` on the connection's own transaction."""
    names = list(rows[0])
    get = operator.itemgetter(*names)
    driver = conn.connection.driver_connection
    sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
        if len(names) > 1:
            for row in rows:
                copy.write_row(get(row))
        else:
            for row in rows:
                copy.write_row((get(row),))


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
