"""The event store: blocking database calls, run in the forwarder's store thread or a
worker thread.

Writes come in batches (one transaction per batch), because a transaction per event
would cap the store at a few thousand events a second: SQLite takes one executemany,
PostgreSQL a binary COPY into a temporary staging table and one INSERT ... SELECT from it
(COPY itself cannot skip rows already there). Inserts ignore a (source, sequence) already
stored, so several bus instances forwarding the same envelope store it once, and a
publisher's re-sends are harmless.

>>> store = EventStore.open("sqlite://", clock=lambda: 1_000.0)
>>> store.write([StoredRow("billing-1", 1, "billing.bill.issued", 0, b"x")])
>>> store.latest(["billing-1"])[0].latest_sequence
1
>>> store.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.events.batch import EnvelopeBatch, SourceRun, StoredRow
from powerbus.bus.events.errors import ReplayGone
from powerbus.bus.events.migrations import MIGRATIONS
from powerbus.bus.events.tables import log, sources
from powerbus.bus.kernel.database import (
    conflict_insert,
    create_engine,
    read_transaction,
    write_transaction,
)
from powerbus.bus.kernel.errors import InvalidArgument, NotFound

__all__ = ["Clock", "EventStore", "SourceMark", "StoredRow", "TopicRow"]

Clock = Callable[[], float]
"""Seconds since the epoch; injected so tests can move time (retention) without waiting."""

_REPLAY_CHUNK = 2_000
_SQLITE_INSERT = (
    "INSERT OR IGNORE INTO events_log"
    " (source, sequence, topic, published_us, stored_ms, envelope) VALUES (?, ?, ?, ?, ?, ?)"
)

_PG_STAGE = (
    "CREATE TEMPORARY TABLE events_stage (LIKE events_log INCLUDING DEFAULTS) ON COMMIT DROP"
)
_PG_COPY = (
    "COPY events_stage (source, sequence, topic, published_us, stored_ms, envelope)"
    " FROM STDIN (FORMAT BINARY)"
)
_PG_TYPES = ["varchar", "int8", "varchar", "int8", "int8", "bytea"]
_PG_MERGE = (
    "INSERT INTO events_log SELECT * FROM events_stage ORDER BY source, sequence"
    " ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class SourceMark:
    """Where one source stands: no gap up to ``latest_sequence``; replayable from
    ``earliest_sequence``."""

    source: str
    latest_sequence: int
    earliest_sequence: int
    latest_published_us: int


@dataclass(frozen=True, slots=True)
class TopicRow:
    """One stored envelope as :meth:`EventStore.stored_since` reads it."""

    source: str
    sequence: int
    stored_ms: int
    envelope: bytes

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.stored_ms, self.source, self.sequence)


class EventStore:
    """The envelope log in the bus's database, with its own Alembic history."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self._clock = clock
        self._sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def open(cls, db_url: str, *, clock: Clock = time.time) -> EventStore:
        """Create the engine for ``db_url`` and bring the tables up to date."""
        engine = create_engine(db_url)
        MIGRATIONS.run(engine)
        return cls(engine, clock=clock)

    def close(self) -> None:
        self.engine.dispose()

    def write(self, rows: EnvelopeBatch | Sequence[StoredRow]) -> None:
        """Store a batch (repeats ignored) and advance each source's contiguous mark."""
        batch = rows if isinstance(rows, EnvelopeBatch) else EnvelopeBatch.of(rows)
        if not batch:
            return
        stored_ms = int(self._clock() * 1000)
        with write_transaction(self.engine) as conn:
            self._insert(conn, batch, stored_ms)
            for run in batch.by_source():
                self._advance(conn, run)

    def _insert(self, conn: Connection, batch: EnvelopeBatch, stored_ms: int) -> None:
        driver: Any = conn.connection.driver_connection  # sqlite3's or psycopg 3's own
        if self._sqlite:
            # The driver's executemany, one prepared statement for the whole batch, fed an
            # iterator: each row's tuple is bound and dropped, never a list of them all.
            driver.executemany(_SQLITE_INSERT, batch.rows(stored_ms=stored_ms))
            return
        with driver.cursor() as cursor:
            # Dropped at commit: each batch stages into a fresh one in its own transaction.
            cursor.execute(_PG_STAGE)
            with cursor.copy(_PG_COPY) as copy:
                copy.set_types(_PG_TYPES)
                write = copy.write_row
                for row in batch.rows(stored_ms=stored_ms):
                    write(row)
            cursor.execute(_PG_MERGE)

    def _advance(self, conn: Connection, run: SourceRun) -> None:
        source = run.source
        query = sa.select(sources.c.latest_sequence, sources.c.earliest_sequence).where(
            sources.c.source == source
        )
        if not self._sqlite:
            query = query.with_for_update()  # two buses advancing one source take turns
        found = conn.execute(query).first()
        mark = int(found.latest_sequence) if found else 0
        published = run.latest_published_us
        sequences = run.sequences
        if sequences == list(range(mark + 1, mark + 1 + len(sequences))):
            mark += len(sequences)  # the usual case: the next ones, in order
        else:
            for sequence in sorted({n for n in sequences if n > mark}):
                if sequence != mark + 1:
                    break
                mark = sequence
        # Envelopes stored earlier beyond a gap this batch closed (or another bus's) may
        # carry the mark further: one primary-key probe per source and batch.
        if self._stored(conn, source, mark + 1):
            mark = self._walk(conn, source, mark)
        if found is None:
            # Nothing of a new source was pruned yet: what is missing below will be re-sent.
            values = {
                "source": source,
                "latest_sequence": mark,
                "earliest_sequence": 1,
                "latest_published_us": published,
            }
            insert = conflict_insert(conn, sources)
            conn.execute(insert.values(values).on_conflict_do_nothing())
        if found is None or mark > int(found.latest_sequence):
            conn.execute(
                sa.update(sources)
                .where(sources.c.source == source, sources.c.latest_sequence < mark)
                .values(latest_sequence=mark, latest_published_us=published)
            )

    def _stored(self, conn: Connection, source: str, sequence: int) -> bool:
        if self._sqlite:  # the driver directly: this runs once per source and batch
            probe = "SELECT 1 FROM events_log WHERE source = ? AND sequence = ?"
            return conn.exec_driver_sql(probe, (source, sequence)).first() is not None
        query = sa.select(log.c.sequence).where(log.c.source == source, log.c.sequence == sequence)
        return conn.execute(query).first() is not None

    @staticmethod
    def _walk(conn: Connection, source: str, mark: int) -> int:
        while True:
            stored = conn.execute(
                sa.select(log.c.sequence)
                .where(log.c.source == source, log.c.sequence > mark)
                .order_by(log.c.sequence)
                .limit(_REPLAY_CHUNK)
            ).scalars()
            moved = False
            for sequence in stored:
                if sequence != mark + 1:
                    return mark
                mark, moved = int(sequence), True
            if not moved:
                return mark

    def latest(self, names: Sequence[str] = ()) -> list[SourceMark]:
        """Marks of ``names`` (every source when empty), sorted by source; unknown left out."""
        query = sa.select(sources).order_by(sources.c.source)
        if names:
            query = query.where(sources.c.source.in_(list(names)))
        with read_transaction(self.engine) as conn:
            return [
                SourceMark(
                    source=r.source,
                    latest_sequence=int(r.latest_sequence),
                    earliest_sequence=int(r.earliest_sequence),
                    latest_published_us=int(r.latest_published_us),
                )
                for r in conn.execute(query)
            ]

    def replay(self, source: str, first: int, last: int = 0) -> Iterator[list[bytes]]:
        """Chunks of ``source``'s envelopes ``first``..``last`` in order (``last`` 0: up to
        the contiguous mark when called). Raises before the first chunk when the request
        is wrong, the source unknown, or ``first`` already pruned."""
        if not source:
            raise InvalidArgument("source", "must not be empty")
        if first < 1:
            raise InvalidArgument("from_sequence", "must be 1 or more")
        if last and last < first:
            raise InvalidArgument("to_sequence", f"{last} is below from_sequence {first}")
        marks = self.latest([source])
        if not marks:
            raise NotFound(f"source {source!r}: this bus has never stored an event of it")
        mark = marks[0]
        if first < mark.earliest_sequence:
            raise ReplayGone(
                f"source {source!r}: sequences before {mark.earliest_sequence} were pruned "
                f"(asked from {first}); rebuild state from the owning service"
            )
        return self._chunks(source, first, last or mark.latest_sequence)

    def _chunks(self, source: str, first: int, last: int) -> Iterator[list[bytes]]:
        # One short read transaction per chunk: a long replay holds no lock or snapshot.
        while first <= last:
            query = (
                sa.select(log.c.sequence, log.c.envelope)
                .where(log.c.source == source, log.c.sequence.between(first, last))
                .order_by(log.c.sequence)
                .limit(_REPLAY_CHUNK)
            )
            with read_transaction(self.engine) as conn:
                rows: list[Any] = list(conn.execute(query))
            if not rows:
                return
            yield [bytes(r.envelope) for r in rows]
            first = int(rows[-1].sequence) + 1

    def stored_since(
        self, topic: str, after: tuple[int, str, int], *, limit: int = 2_000
    ) -> list[TopicRow]:
        """Envelopes of ``topic`` stored after ``after`` = (stored_ms, source, sequence),
        in that order, at most ``limit``: pass the last row's key to read on (one batch
        shares one stored_ms, so the time alone cannot page)."""
        key = sa.tuple_(log.c.stored_ms, log.c.source, log.c.sequence)
        query = (
            sa.select(log.c.source, log.c.sequence, log.c.stored_ms, log.c.envelope)
            .where(log.c.stored_ms >= after[0], key > sa.tuple_(*after), log.c.topic == topic)
            .order_by(log.c.stored_ms, log.c.source, log.c.sequence)
            .limit(limit)
        )
        with read_transaction(self.engine) as conn:
            return [
                TopicRow(r.source, int(r.sequence), int(r.stored_ms), bytes(r.envelope))
                for r in conn.execute(query)
            ]

    def prune(self, retention: timedelta) -> int:
        """Delete envelopes stored longer ago than ``retention``; returns how many."""
        cutoff = int((self._clock() - retention.total_seconds()) * 1000)
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(sa.delete(log).where(log.c.stored_ms < cutoff)).rowcount
            if deleted:
                lowest = (
                    sa.select(sa.func.min(log.c.sequence))
                    .where(log.c.source == sources.c.source)
                    .scalar_subquery()
                )
                conn.execute(
                    sa.update(sources).values(
                        earliest_sequence=sa.func.coalesce(lowest, sources.c.latest_sequence + 1)
                    )
                )
        return int(deleted or 0)

    def count(self) -> int:
        """How many envelopes are stored (tests, the dashboard)."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(log)).scalar_one())
