"""Bulk inserts: PostgreSQL's COPY through psycopg 3 on the transaction's own connection
(so a fence check and the load commit or fail together), executemany elsewhere.

A unique violation (another writer stored the same interval between our look-up and our
insert) becomes :class:`InsertRace`, which the writer answers by planning again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["InsertRace", "bulk_insert"]


class InsertRace(Exception):
    """A row of the batch was inserted by someone else meanwhile; plan the batch again."""


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the table's column order) in one round of the driver."""
    if not rows:
        return
    try:
        if conn.dialect.name == "postgresql":
            _copy(conn, table, rows)
        else:
            names = [c.name for c in table.columns]
            conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])
    except sa.exc.IntegrityError as exc:
        raise InsertRace(str(exc.orig)) from None


def _copy(conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
    import psycopg  # only PostgreSQL needs it

    columns = ", ".join(c.name for c in table.columns)
    driver: Any = conn.connection.driver_connection
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy,
        ):
            write = copy.write_row
            for row in rows:
                write(row)
    except psycopg.errors.UniqueViolation as exc:
        raise InsertRace(str(exc)) from None
