"""Writing the journal: balanced postings in, rows of ``pay_transactions`` and
``pay_entries`` out, many at once (``executemany``), which is what makes batched posting
fast. Only inserts: entries are immutable and the tables' triggers refuse anything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from powerbus.nodes.payment.ledger import Kind, Line, Posting
from powerbus.nodes.payment.store.bulk import insert_many
from powerbus.nodes.payment.store.tables import entries, transactions

__all__ = ["Journal"]

_KIND_NAMES = {kind: kind.value for kind in Kind}  # Enum's .value is a descriptor call


class Journal:
    """Postings of one database transaction, written by :meth:`flush`.

    Transaction ids are assigned here (the highest so far plus one), which is safe
    because the store holds the write lock for the whole transaction. Every posting of
    one database transaction gets one ``created_at``: they commit together.
    """

    def __init__(self, conn: Connection, *, clock: Callable[[], dt.datetime]) -> None:
        self._conn = conn
        self._clock = clock
        self._now: dt.datetime | None = None
        self._transactions: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []
        self._next: int | None = None

    def add(self, posting: Posting, *, payment_id: str, memo: str = "", actor: str = "") -> int:
        """Queue ``posting`` for ``payment_id``; returns its transaction id."""
        if self._next is None or self._now is None:
            top = sa.select(sa.func.coalesce(sa.func.max(transactions.c.txn_id), 0))
            self._next = int(self._conn.execute(top).scalar_one()) + 1
            self._now = self._clock()
        txn_id, self._next = self._next, self._next + 1
        self._transactions.append(
            {
                "txn_id": txn_id,
                "kind": _KIND_NAMES[posting.kind],
                "payment_id": payment_id,
                "actor": actor,
                "memo": memo[:200],
                "created_at": self._now,
            }
        )
        self._entries += [
            {"txn_id": txn_id, "account": line.account, "debit": line.debit, "credit": line.credit}
            for line in posting.lines
        ]
        return txn_id

    def flush(self) -> None:
        """Insert what was added (transactions before their entries)."""
        if self._transactions:
            insert_many(self._conn, transactions, self._transactions)
            insert_many(self._conn, entries, self._entries)
        self._transactions, self._entries = [], []

    def lines_of(self, payment_id: str) -> list[Line]:
        """Every line posted for ``payment_id`` so far (flushed ones)."""
        query = (
            sa.select(entries.c.account, entries.c.debit, entries.c.credit)
            .join(transactions, transactions.c.txn_id == entries.c.txn_id)
            .where(transactions.c.payment_id == payment_id)
            .order_by(entries.c.entry_id)
        )
        return [Line(a, debit=d, credit=c) for a, d, c in self._conn.execute(query)]
