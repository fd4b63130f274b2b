"""Stored resolutions of reconciliation items (``pay_resolutions``): one row per item,
written in the transaction of the ledger entries it caused; its primary key is what
makes resolving an item twice impossible."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from powerbus.adapters.bank import Category, ItemResolution, ResolutionAction
from powerbus.nodes.payment.resolution import ItemKey
from powerbus.nodes.payment.store.records import utc
from powerbus.nodes.payment.store.tables import resolutions

__all__ = ["find", "for_report", "insert"]


def find(conn: Connection, key: ItemKey) -> ItemResolution | None:
    """The resolution of the item ``key``, if it has one."""
    row = conn.execute(
        sa.select(resolutions).where(
            resolutions.c.bank_code == key.bank_code,
            resolutions.c.settlement_date == key.settlement_date,
            resolutions.c.bank_txn_id == key.bank_txn_id,
            resolutions.c.line_number == key.line_number,
        )
    ).first()
    return _resolution(row) if row is not None else None


def for_report(
    conn: Connection, bank_code: str, day: dt.date
) -> dict[tuple[str, int], ItemResolution]:
    """Every resolution of a report, by (bank serial, statement line)."""
    query = sa.select(resolutions).where(
        resolutions.c.bank_code == bank_code, resolutions.c.settlement_date == day
    )
    return {(r.bank_txn_id, r.line_number): _resolution(r) for r in conn.execute(query)}


def insert(conn: Connection, key: ItemKey, done: ItemResolution) -> None:
    conn.execute(
        resolutions.insert().values(
            bank_code=key.bank_code,
            settlement_date=key.settlement_date,
            bank_txn_id=key.bank_txn_id,
            line_number=key.line_number,
            category=done.category.value,
            action=done.action.value,
            reason=done.reason,
            operator=done.operator,
            resolved_at=done.resolved_at,
            ledger_txn_ids=_ids_text(done.ledger_txn_ids),
            payment_id=done.payment_id,
            written_off=done.written_off,
        )
    )


def _ids_text(ids: Sequence[int]) -> str:
    return ",".join(str(i) for i in ids)


def _resolution(row: Any) -> ItemResolution:
    return ItemResolution(
        action=ResolutionAction(row.action),
        reason=row.reason,
        operator=row.operator,
        resolved_at=utc(row.resolved_at),
        category=Category(row.category),
        ledger_txn_ids=tuple(int(t) for t in row.ledger_txn_ids.split(",") if t),
        payment_id=row.payment_id,
        written_off=row.written_off,
    )
