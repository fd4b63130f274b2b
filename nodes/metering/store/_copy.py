"""Bulk inserts: PostgreSQL's COPY through psycopg 3 on the transaction's own connection
(so a fence check and the load commit or fail together), executemany elsewhere.

COPY goes in text format, formatted here rather than value by value through psycopg's
adapters: a batch repeats the same few meter ids and interval ends, so caching each
distinct value's text makes formatting a join per row. A unique violation (another
writer stored the same interval between our look-up and our insert) becomes
:class:`InsertRace`, which the writer answers by planning again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["InsertRace", "bulk_insert", "copy_text"]

_CHUNK_ROWS = 20_000  # rows per write: the server parses one chunk while we format the next
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


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


def copy_text(rows: Sequence[tuple[Any, ...]]) -> Iterator[bytes]:
    """``rows`` in COPY's text format, a chunk at a time (str, int, datetime and None
    values: a bool would share its cache entry with 1 and 0).

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 12, 1, tzinfo=timezone.utc)
    >>> b"".join(copy_text([("M\\t1", 3, t, None, "a\\\\b")]))
    b'M\\\\t1\\t3\\t2026-12-01T00:00:00+00:00\\t\\\\N\\ta\\\\\\\\b\\n'
    """
    cache: dict[Any, str] = {None: "\\N"}

    def text(value: Any) -> str:
        if isinstance(value, str):
            out = value.translate(_ESCAPES)
        elif isinstance(value, datetime):
            out = value.isoformat()
        else:
            out = str(value)
        cache[value] = out
        return out

    get = cache.get
    for i in range(0, len(rows), _CHUNK_ROWS):
        lines = ["\t".join([get(v) or text(v) for v in row]) for row in rows[i : i + _CHUNK_ROWS]]
        lines.append("")
        yield "\n".join(lines).encode()


def _copy(conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
    import psycopg  # only PostgreSQL needs it

    columns = ", ".join(c.name for c in table.columns)
    driver: Any = conn.connection.driver_connection
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy,
        ):
            for chunk in copy_text(rows):
                copy.write(chunk)
    except psycopg.errors.UniqueViolation as exc:
        raise InsertRace(str(exc)) from None
