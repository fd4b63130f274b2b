"""The readings store: interval and register values with their quality, in batches.

>>> from datetime import datetime, timedelta, timezone
>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.nodes.metering.vee import IntervalValue
>>> engine = create_engine("sqlite://")
>>> store = ReadingStore(engine)
>>> store.migrate()
>>> t = datetime(2026, 12, 1, 0, 15, tzinfo=timezone.utc)
>>> batch = [IntervalRecord("M1", FORWARD_DELTA_KWH, IntervalValue(t, 420))]
>>> store.write_intervals(batch).inserted, store.write_intervals(batch).unchanged
(1, 1)
>>> [s.value.wh for s in store.readings(["M1"], t - timedelta(hours=1), t + timedelta(hours=1))]
[420]
>>> engine.dispose()
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import InvalidArgument, NotFound, Unavailable
from powerbus.nodes.metering.store._codes import (
    METHOD_OF,
    QUALITY,
    QUALITY_OF,
    RULE,
    RULE_OF,
)
from powerbus.nodes.metering.store._copy import InsertRace, bulk_insert
from powerbus.nodes.metering.store._pages import decode_token, encode_token
from powerbus.nodes.metering.store._partitions import Partitions
from powerbus.nodes.metering.store._records import (
    FORWARD_BULK_KWH,
    FORWARD_DELTA_KWH,
    FROZEN_FORWARD_KWH,
    REACTIVE_Q1_DELTA_KVARH,
    REACTIVE_Q2_DELTA_KVARH,
    REVERSE_DELTA_KWH,
    Fence,
    IntervalRecord,
    RegisterRecord,
    StoredInterval,
    StoredRegister,
    WriteResult,
)
from powerbus.nodes.metering.store._summary import UsageSummary, summarize_values
from powerbus.nodes.metering.store._tables import (
    UtcDateTime,
    history,
    intervals,
    reading_types,
    registers,
)
from powerbus.nodes.metering.store._windows import LocalWindow, WindowTable
from powerbus.nodes.metering.store._writer import apply_plan, check_fence, interval_row, plan_rows
from powerbus.nodes.metering.store.migrations import MIGRATIONS
from powerbus.nodes.metering.vee import History, IntervalValue, QualityCode

__all__ = ["ReadingStore", "ReadingsPage", "SupersededInterval"]

_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ReadingsPage:
    """One page of stored intervals and the token of the next ('' on the last page)."""

    items: tuple[StoredInterval, ...]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class SupersededInterval:
    """A value that a later write replaced, and which write and when."""

    stored: StoredInterval
    superseded_by: int
    superseded_at: datetime


class ReadingStore:
    """Interval and register readings in SQLAlchemy Core, on an engine the caller owns
    (created at start, disposed at stop); every method is one short transaction, so the
    node calls them from a worker thread."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._ids: dict[str, int] = {}
        self._mrids: dict[int, str] = {}
        self._partitions = Partitions() if engine.dialect.name == "postgresql" else None

    def migrate(self) -> None:
        """Create or upgrade the store's tables (safe at every start)."""
        MIGRATIONS.run(self.engine)

    # -- writes -------------------------------------------------------------------------

    def write_intervals(
        self,
        records: Sequence[IntervalRecord],
        *,
        fence: Fence | None = None,
        also: Callable[[Connection, WriteResult], None] | None = None,
    ) -> WriteResult:
        """Store a batch in one transaction; with ``fence``, only while that token is
        still the gateway's (else :class:`~powerbus.nodes.metering.errors.StaleOwner`).
        ``also(conn, result)`` runs in that same transaction once the values are written
        (register reads, events into an outbox): it commits with them or not at all."""
        write_id = secrets.randbits(63)
        if not records:
            if also is not None:
                with write_transaction(self.engine) as conn:
                    if fence is not None:
                        check_fence(conn, fence)
                    also(conn, WriteResult(write_id=write_id))
            return WriteResult(write_id=write_id)
        ids = self.type_ids({r.reading_type for r in records})
        rows = [interval_row(r, ids[r.reading_type], write_id) for r in records]
        if self._partitions is not None:
            self._partitions.ensure(self.engine, _months(rows))
        for attempt in range(_ATTEMPTS):
            try:
                with write_transaction(self.engine) as conn:
                    if fence is not None:
                        check_fence(conn, fence)
                    done = _copy_all_new(conn, rows, write_id) if self._pg else None
                    if done is None:
                        done = apply_plan(conn, plan_rows(conn, rows), write_id, self._clock())
                    if also is not None:
                        also(conn, done)
                    return done
            except InsertRace as race:
                if attempt == _ATTEMPTS - 1:
                    raise Unavailable(
                        f"metering store: concurrent writers kept racing: {race}"
                    ) from None
        raise AssertionError("unreachable")

    def write_registers(
        self, records: Sequence[RegisterRecord], *, fence: Fence | None = None
    ) -> WriteResult:
        """Store register reads; a read stored already is unchanged, a different value
        at the same time is a conflict (the first one stays)."""
        if not records:
            return WriteResult(write_id=secrets.randbits(63))
        self.type_ids({r.reading_type for r in records})
        with write_transaction(self.engine) as conn:
            if fence is not None:
                check_fence(conn, fence)
            return self.write_registers_in(conn, records)

    def write_registers_in(
        self, conn: Connection, records: Sequence[RegisterRecord]
    ) -> WriteResult:
        """:meth:`write_registers` inside the caller's transaction ``conn`` (e.g. the
        ``also`` of :meth:`write_intervals`); the reading types must be known already
        (:meth:`type_ids`), since registering one needs a transaction of its own."""
        write_id = secrets.randbits(63)
        if not records:
            return WriteResult(write_id=write_id)
        ids = {m: self._ids[m] for m in {r.reading_type for r in records}}
        rows = {
            (r.meter_id, ids[r.reading_type], r.read_at.astimezone(timezone.utc)): (
                r.value,
                QUALITY[r.quality],
                RULE[r.rule],
                r.detail or None,
                write_id,
            )
            for r in reversed(records)  # reversed: the first of repeated keys wins
        }
        stored = self._stored_registers(conn, rows)
        new = [(*k, *v) for k, v in rows.items() if k not in stored]
        bulk_insert(conn, registers, new)
        same = sum(1 for k, v in rows.items() if k in stored and stored[k] == v[0])
        return WriteResult(
            write_id=write_id,
            inserted=len(new),
            unchanged=same + len(records) - len(rows),
            conflicts=len(rows) - len(new) - same,
        )

    def _stored_registers(
        self, conn: Connection, rows: Mapping[tuple[str, int, datetime], tuple[object, ...]]
    ) -> dict[tuple[str, int, datetime], int]:
        c = registers.c
        keys = list(rows)
        found: dict[tuple[str, int, datetime], int] = {}
        for type_id in {k[1] for k in keys}:
            meters = sorted({k[0] for k in keys if k[1] == type_id})
            times = [k[2] for k in keys]
            query = sa.select(c.meter_id, c.reading_type, c.read_at, c.value).where(
                c.reading_type == type_id,
                # bound as one expanding parameter, not a literal per meter
                c.meter_id.in_(sa.bindparam("meters", expanding=True)),
                c.read_at.between(min(times), max(times)),
            )
            for m, t, at, value in conn.execute(query, {"meters": meters}):
                found[(m, t, at)] = value
        return found

    # -- reading types ------------------------------------------------------------------

    def type_ids(self, mrids: Iterable[str]) -> dict[str, int]:
        """Small ids of reading-type mRIDs, registering new ones."""
        wanted = set(mrids)
        missing = wanted - self._ids.keys()
        if missing:
            insert = (postgresql.insert if self._pg else sqlite.insert)(reading_types)
            with write_transaction(self.engine) as conn:
                conn.execute(
                    insert.on_conflict_do_nothing(), [{"mrid": m} for m in sorted(missing)]
                )
                self._load_types(conn)
        return {m: self._ids[m] for m in wanted}

    def _load_types(self, conn: Connection) -> None:
        for type_id, mrid in conn.execute(sa.select(reading_types.c.id, reading_types.c.mrid)):
            self._ids[mrid] = type_id
            self._mrids[type_id] = mrid

    def _mrid(self, conn: Connection, type_id: int) -> str:
        if type_id not in self._mrids:
            self._load_types(conn)
        return self._mrids[type_id]

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # -- reads --------------------------------------------------------------------------

    def readings(
        self,
        meter_ids: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        reading_types: Sequence[str] = (),
        qualities: Sequence[QualityCode] = (),
    ) -> list[StoredInterval]:
        """Every stored interval of the meters with ``end`` in ``[start, end)``."""
        items: list[StoredInterval] = []
        token = ""
        while True:
            page = self.readings_page(
                meter_ids,
                start,
                end,
                reading_types=reading_types,
                qualities=qualities,
                page_size=10_000,
                page_token=token,
            )
            items.extend(page.items)
            if not (token := page.next_page_token):
                return items

    def readings_page(
        self,
        meter_ids: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        reading_types: Sequence[str] = (),
        qualities: Sequence[QualityCode] = (),
        page_size: int = 1000,
        page_token: str = "",
    ) -> ReadingsPage:
        """A page of :meth:`readings`, ordered by meter, reading type and time
        (``GetMeterReadings``)."""
        _check_period(start, end)
        if not meter_ids:
            raise InvalidArgument("meters", "at least one meter is needed")
        if page_size <= 0:
            raise InvalidArgument("page.page_size", f"must be positive, got {page_size}")
        c = intervals.c
        query = sa.select(intervals).where(
            c.meter_id.in_(sorted(set(meter_ids))), c.end_at >= start, c.end_at < end
        )
        if reading_types:
            ids = self.type_ids(reading_types)
            query = query.where(c.reading_type.in_(ids.values()))
        if qualities:
            query = query.where(c.quality.in_([QUALITY[q] for q in qualities]))
        if page_token:
            after = decode_token(page_token)
            query = query.where(
                sa.tuple_(c.meter_id, c.reading_type, c.end_at)
                > sa.tuple_(
                    sa.literal(after[0]), sa.literal(after[1]), sa.literal(after[2], UtcDateTime())
                )
            )
        query = query.order_by(c.meter_id, c.reading_type, c.end_at).limit(page_size + 1)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
            items = tuple(self._stored(conn, row) for row in rows[:page_size])
        if len(rows) <= page_size:
            return ReadingsPage(items)
        last = rows[page_size - 1]
        return ReadingsPage(items, encode_token((last[0], last[1], last[2])))

    def superseded(
        self, meter_id: str, reading_type: str, start: datetime, end: datetime
    ) -> list[SupersededInterval]:
        """Values of one meter and type that later writes replaced, oldest first."""
        _check_period(start, end)
        type_id = self.type_ids([reading_type])[reading_type]
        c = history.c
        query = (
            sa.select(history)
            .where(c.meter_id == meter_id, c.reading_type == type_id)
            .where(c.end_at >= start, c.end_at < end)
            .order_by(c.end_at, c.id)
        )
        with read_transaction(self.engine) as conn:
            return [
                SupersededInterval(
                    self._stored(conn, tuple(row)[1:11]), row.superseded_by, row.superseded_at
                )
                for row in conn.execute(query)
            ]

    def registers(
        self,
        meter_ids: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        reading_types: Sequence[str] = (),
    ) -> list[StoredRegister]:
        """Register reads of the meters with ``read_at`` in ``[start, end]`` (both ends:
        a billing period is bounded by the reads at its two ends)."""
        _check_period(start, end)
        c = registers.c
        query = sa.select(registers).where(
            c.meter_id.in_(sorted(set(meter_ids))), c.read_at >= start, c.read_at <= end
        )
        if reading_types:
            query = query.where(c.reading_type.in_(self.type_ids(reading_types).values()))
        query = query.order_by(c.meter_id, c.reading_type, c.read_at)
        with read_transaction(self.engine) as conn:
            return [
                StoredRegister(
                    RegisterRecord(
                        row.meter_id,
                        self._mrid(conn, row.reading_type),
                        row.read_at,
                        row.value,
                        QUALITY_OF[row.quality],
                        RULE_OF[row.rule],
                        row.detail or "",
                    ),
                    row.write_id,
                )
                for row in conn.execute(query)
            ]

    def summarize(
        self,
        meter_id: str,
        start: datetime,
        end: datetime,
        *,
        windows: Sequence[LocalWindow] = (),
        time_zone: str = "Asia/Shanghai",
        interval: timedelta = timedelta(minutes=15),
        rollover_wh: int = 0,
    ) -> UsageSummary:
        """Billing determinants of one meter over ``[start, end)`` (``SummarizeUsage``).

        An interval ending at ``end`` belongs to the period: it is ``(end − 15 min,
        end]``. Raises :class:`NotFound` when nothing at all is stored for the meter.
        """
        _check_period(start, end)
        table = WindowTable(windows, time_zone=time_zone) if windows else None
        # Intervals are named by their end, so the period's are those ending in (start, end].
        values = self.readings([meter_id], start + interval, end + interval)
        if not values and not self._known(meter_id):
            raise NotFound(f"meter {meter_id}: nothing stored")
        by_type: dict[str, list[StoredInterval]] = {}
        for s in values:
            by_type.setdefault(s.reading_type, []).append(s)
        regs = self.registers(
            [meter_id], start, end, reading_types=[FORWARD_BULK_KWH, *FROZEN_FORWARD_KWH]
        )
        return summarize_values(
            meter_id,
            start,
            end,
            forward=by_type.get(FORWARD_DELTA_KWH, []),
            reverse=by_type.get(REVERSE_DELTA_KWH, []),
            reactive=[
                *by_type.get(REACTIVE_Q1_DELTA_KVARH, []),
                *by_type.get(REACTIVE_Q2_DELTA_KVARH, []),
            ],
            registers=[r for r in regs if r.record.reading_type == FORWARD_BULK_KWH],
            frozen=[r for r in regs if r.record.reading_type != FORWARD_BULK_KWH],
            windows=table,
            interval=interval,
            rollover_wh=rollover_wh,
        )

    def history(
        self,
        meter_id: str,
        before: datetime,
        *,
        days: int = 28,
        reading_type: str = FORWARD_DELTA_KWH,
        interval: timedelta = timedelta(minutes=15),
        time_zone: str = "Asia/Shanghai",
    ) -> History:
        """VEE's reference for a meter: its VALID values over the ``days`` before
        ``before`` (estimates and suspect values would teach VEE their own errors)."""
        # Intervals are named by their end: the days before ``before`` end in (.., before].
        good = self.readings(
            [meter_id],
            before - timedelta(days=days) + interval,
            before + interval,
            reading_types=[reading_type],
            qualities=[QualityCode.VALID],
        )
        pairs = ((s.value.end, s.value.wh) for s in good if s.value.wh is not None)
        return History.from_intervals(pairs, interval=interval, zone=time_zone)

    def _known(self, meter_id: str) -> bool:
        with read_transaction(self.engine) as conn:
            for table in (intervals, registers):
                query = sa.select(table.c.meter_id).where(table.c.meter_id == meter_id).limit(1)
                if conn.execute(query).first() is not None:
                    return True
        return False

    def _stored(self, conn: Connection, row: Sequence[Any]) -> StoredInterval:
        meter_id, type_id, end_at, wh, raw, quality, rule, method, detail, write_id = row
        value = IntervalValue(
            end_at, wh, QUALITY_OF[quality], RULE_OF[rule], METHOD_OF[method], raw, detail or ""
        )
        return StoredInterval(meter_id, self._mrid(conn, type_id), value, write_id)


def _copy_all_new(
    conn: Connection, rows: Sequence[tuple[Any, ...]], write_id: int
) -> WriteResult | None:
    """On PostgreSQL, try the whole batch as one COPY first, in a savepoint: a batch is
    nearly always new, and then no look-up is needed at all. If any key is stored already
    the savepoint rolls back and the batch is planned row by row (None)."""
    try:
        with conn.begin_nested():
            bulk_insert(conn, intervals, rows)
    except InsertRace:
        return None
    return WriteResult(write_id=write_id, inserted=len(rows))


def _check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidArgument("period", "times must be aware (UTC)")
    if end <= start:
        raise InvalidArgument("period", f"empty or reversed: {start} .. {end}")


def _months(rows: Sequence[tuple[Any, ...]]) -> set[tuple[int, int]]:
    """Every UTC month from the batch's first interval end to its last."""
    times: list[datetime] = [r[2] for r in rows]
    lo, hi = min(times), max(times)
    months = set()
    year, month = lo.year, lo.month
    while (year, month) <= (hi.year, hi.month):
        months.add((year, month))
        year, month = year + month // 12, month % 12 + 1
    return months
