"""One write of interval values: check the fence, look up what is stored for the batch's
keys, plan (insert, supersede, unchanged, kept, conflict), apply, all in one transaction.

Why look up first rather than INSERT ... ON CONFLICT: a batch is nearly always new (the
poller's latest intervals), and a look-up that finds nothing lets the whole batch go in
as one COPY; the primary key still guarantees no duplicates if two writers race, and the
loser plans again (:class:`~._copy.InsertRace`).

Replacement rules, so backfill can replace estimates but nothing silently overwrites a
measurement:

=====================  ==========================  ==========================
stored                 incoming measured           incoming estimate (E/S)
=====================  ==========================  ==========================
nothing                insert                      insert
same value             unchanged                   unchanged
estimate or no value   supersede (old to history)  supersede (a newer estimate)
measured, different    conflict (kept, counted)    kept
=====================  ==========================  ==========================
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from powerbus.nodes.metering.errors import StaleOwner
from powerbus.nodes.metering.store._codes import METHOD, QUALITY, RULE
from powerbus.nodes.metering.store._copy import bulk_insert
from powerbus.nodes.metering.store._records import Fence, IntervalRecord, WriteResult
from powerbus.nodes.metering.store._tables import history, intervals, leases
from powerbus.nodes.metering.vee import QualityCode

__all__ = ["Plan", "apply_plan", "check_fence", "interval_row", "plan_rows"]

Row = tuple[Any, ...]
Key = tuple[str, int, datetime]
_CHUNK = 500  # meter ids per IN (...) look-up
_KEY = operator.itemgetter(0, 1, 2)
_END = operator.itemgetter(2)
_EDITED = {QUALITY[QualityCode.ESTIMATED], QUALITY[QualityCode.SUBSTITUTED]}


def check_fence(conn: Connection, fence: Fence) -> None:
    """Refuse the write unless ``fence.token`` is still the gateway's token.

    On PostgreSQL the lease row is read FOR SHARE, so a takeover (which updates it) waits
    for this transaction: a write that passed the check commits before the new owner's
    token counts. SQLite's write transaction holds the database lock already.
    """
    query = sa.select(leases.c.token).where(leases.c.gateway == fence.gateway)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    current = conn.execute(query).scalar_one_or_none()
    if current != fence.token:
        raise StaleOwner(fence.gateway, held=fence.token, current=current)


def interval_row(record: IntervalRecord, type_id: int, write_id: int) -> Row:
    """The record as a row in ``metering_intervals`` column order."""
    v = record.value
    end = v.end if v.end.tzinfo is timezone.utc else v.end.astimezone(timezone.utc)
    return (
        record.meter_id,
        type_id,
        end,
        v.wh,
        v.raw_wh,
        QUALITY[v.quality],
        RULE[v.rule],
        METHOD[v.method],
        v.detail or None,
        write_id,
    )


@dataclass
class Plan:
    """What to do with a batch, row by row."""

    inserts: list[Row] = field(default_factory=list)
    # (stored row, new row)
    supersedes: list[tuple[Row, Row]] = field(default_factory=list)
    unchanged: int = 0
    kept: int = 0
    conflicts: int = 0


def _same(a: Row, b: Row) -> bool:
    return a[3:9] == b[3:9]


def _measured(row: Row) -> bool:
    return row[3] is not None and row[5] not in _EDITED


def plan_rows(conn: Connection, rows: Sequence[Row]) -> Plan:
    """Plan ``rows`` against what is stored for their keys."""
    stored = _stored(conn, rows)
    if not stored and len(set(map(_KEY, rows))) == len(rows):
        return Plan(inserts=list(rows))  # the common case: all new
    plan = Plan()
    seen: set[Key] = set()
    for row in rows:
        key: Key = _KEY(row)
        if key in seen:  # the same interval twice in one batch: the first one counts
            plan.unchanged += 1
            continue
        seen.add(key)
        old = stored.get(key)
        if old is None:
            plan.inserts.append(row)
        elif _same(old, row):
            plan.unchanged += 1
        elif not _measured(old):
            plan.supersedes.append((old, row))
        elif _measured(row):
            plan.conflicts += 1
        else:
            plan.kept += 1
    return plan


def _stored(conn: Connection, rows: Sequence[Row]) -> dict[Key, Row]:
    """Stored rows in the batch's range: one look-up per reading type and chunk of meters
    (the caller matches them to its keys)."""
    if not rows:
        return {}
    times = list(map(_END, rows))
    lo, hi = min(times), max(times)
    found: dict[Key, Row] = {}
    c = intervals.c
    for type_id in {row[1] for row in rows}:
        ordered = sorted({row[0] for row in rows if row[1] == type_id})
        for i in range(0, len(ordered), _CHUNK):
            query = sa.select(intervals).where(
                c.reading_type == type_id,
                c.meter_id.in_(ordered[i : i + _CHUNK]),
                c.end_at >= lo,
                c.end_at <= hi,
            )
            for stored in conn.execute(query):
                found[(stored[0], stored[1], stored[2])] = tuple(stored)
    return found


def apply_plan(conn: Connection, plan: Plan, write_id: int, now: datetime) -> WriteResult:
    """Insert, move replaced rows to history and update them, in the open transaction."""
    bulk_insert(conn, intervals, plan.inserts)
    if plan.supersedes:
        _supersede(conn, plan.supersedes, write_id, now)
    return WriteResult(
        write_id=write_id,
        inserted=len(plan.inserts),
        superseded=len(plan.supersedes),
        unchanged=plan.unchanged,
        kept=plan.kept,
        conflicts=plan.conflicts,
    )


def _supersede(
    conn: Connection, pairs: Iterable[tuple[Row, Row]], write_id: int, now: datetime
) -> None:
    names = [c.name for c in intervals.columns]
    old_rows = []
    updates = []
    for old, new in pairs:
        old_rows.append(
            {**dict(zip(names, old, strict=True)), "superseded_by": write_id, "superseded_at": now}
        )
        updates.append({f"b_{n}": v for n, v in zip(names, new, strict=True)})
    conn.execute(history.insert(), old_rows)
    c = intervals.c
    update = (
        sa.update(intervals)
        .where(
            c.meter_id == sa.bindparam("b_meter_id"),
            c.reading_type == sa.bindparam("b_reading_type"),
            c.end_at == sa.bindparam("b_end_at"),
        )
        .values({n: sa.bindparam(f"b_{n}") for n in names[3:]})
    )
    conn.execute(update, updates)
