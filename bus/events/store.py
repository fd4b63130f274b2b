"""The event store: blocking database calls, run in the forwarder's store thread or a
worker thread.

Writes come in batches (one transaction per batch), because a transaction per event
would cap the store at a few thousand events a second, and each batch is stored as runs
(``tables.runs``: a row per run of consecutive envelopes of one source and topic), because
a row per envelope cost ~4 µs an envelope. Per source, a batch takes the source's row
lock (PostgreSQL: ``FOR UPDATE``; SQLite: the write lock ``BEGIN IMMEDIATE`` takes), reads
the stored runs its sequences overlap and writes only the parts no run covers: several
bus instances forwarding the same envelope store it once, and a publisher's re-sends,
which may overlap a stored run in part, are harmless.

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

from powerbus.bus.events.batch import MAX_RUN, EnvelopeBatch, Run, StoredRow, uncovered, unpack
from powerbus.bus.events.errors import ReplayGone
from powerbus.bus.events.migrations import MIGRATIONS
from powerbus.bus.events.tables import runs, sources
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

_REPLAY_RUNS = max(1, 2_000 // MAX_RUN) * 2  # runs read per replay chunk
_WALK_RUNS = 1_000  # runs read per query while walking the contiguous mark


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
        """Store a batch (what is stored already is left out) and advance each source's
        contiguous mark."""
        batch = rows if isinstance(rows, EnvelopeBatch) else EnvelopeBatch.of(rows)
        if not batch:
            return
        stored_ms = int(self._clock() * 1000)
        per_source: dict[str, list[Run]] = {}
        for run in batch.runs():
            per_source.setdefault(run.source, []).append(run)
        with write_transaction(self.engine) as conn:
            # Sources in one order on every bus, so two buses locking several never deadlock.
            for source in sorted(per_source):
                self._store_source(conn, source, per_source[source], stored_ms)

    def _store_source(self, conn: Connection, source: str, new: list[Run], stored_ms: int) -> None:
        found = self._lock_source(conn, source)
        low, high = min(r.first for r in new), max(r.last for r in new)
        covered = [
            (int(r.first_sequence), int(r.last_sequence))
            for r in conn.execute(
                sa.select(runs.c.first_sequence, runs.c.last_sequence)
                .where(
                    runs.c.source == source,
                    # a run holds at most MAX_RUN: the bound keeps this an index range
                    # near ``low``, not a scan of the source's whole history
                    runs.c.first_sequence > low - MAX_RUN,
                    runs.c.first_sequence <= high,
                    runs.c.last_sequence >= low,
                )
                .order_by(runs.c.first_sequence)
            )
        ]
        values = [
            {
                "source": source,
                "first_sequence": part.first,
                "last_sequence": part.last,
                "topic": part.topic,
                "published_us": part.published_us,
                "stored_ms": stored_ms,
                "envelopes": part.blob,
            }
            for run in new
            for part in uncovered(run, covered)
        ]
        if values:
            conn.execute(runs.insert(), values)
        mark = self._walk(conn, source, found.latest_sequence)
        if mark > found.latest_sequence:
            conn.execute(
                sa.update(sources)
                .where(sources.c.source == source)
                .values(
                    latest_sequence=mark,
                    latest_published_us=max(r.published_us for r in new),
                )
            )

    def _lock_source(self, conn: Connection, source: str) -> SourceMark:
        # Nothing of a new source was pruned yet: what is missing below will be re-sent.
        insert = conflict_insert(conn, sources).values(
            source=source, latest_sequence=0, earliest_sequence=1, latest_published_us=0
        )
        conn.execute(insert.on_conflict_do_nothing())
        query = sa.select(sources).where(sources.c.source == source)
        if not self._sqlite:
            # Two buses storing one source take turns; the second then reads (a statement
            # sees what committed before it, in READ COMMITTED) the runs the first wrote.
            query = query.with_for_update()
        r = conn.execute(query).one()
        return SourceMark(
            source, int(r.latest_sequence), int(r.earliest_sequence), int(r.latest_published_us)
        )

    @staticmethod
    def _walk(conn: Connection, source: str, mark: int) -> int:
        """How far the runs after ``mark`` carry it without a gap."""
        while True:
            stored = conn.execute(
                sa.select(runs.c.first_sequence, runs.c.last_sequence)
                .where(
                    runs.c.source == source,
                    runs.c.first_sequence > mark - MAX_RUN,  # see _store_source
                    runs.c.last_sequence > mark,
                )
                .order_by(runs.c.first_sequence)
                .limit(_WALK_RUNS)
            ).all()
            for first, last in stored:
                if first > mark + 1:
                    return mark
                mark = max(mark, int(last))
            if len(stored) < _WALK_RUNS:
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
                sa.select(runs.c.first_sequence, runs.c.last_sequence, runs.c.envelopes)
                .where(
                    runs.c.source == source,
                    runs.c.first_sequence > first - MAX_RUN,  # see _store_source
                    runs.c.last_sequence >= first,
                    runs.c.first_sequence <= last,
                )
                .order_by(runs.c.first_sequence)
                .limit(_REPLAY_RUNS)
            )
            with read_transaction(self.engine) as conn:
                rows: list[Any] = list(conn.execute(query))
            if not rows:
                return
            chunk: list[bytes] = []
            for r in rows:
                start = int(r.first_sequence)
                envelopes = unpack(bytes(r.envelopes))
                chunk.extend(envelopes[max(0, first - start) : last - start + 1])
            yield chunk
            first = int(rows[-1].last_sequence) + 1

    def stored_since(
        self, topic: str, after: tuple[int, str, int], *, limit: int = 2_000
    ) -> list[TopicRow]:
        """Envelopes of ``topic`` stored after ``after`` = (stored_ms, source, sequence),
        in that order, at most ``limit``: pass the last row's key to read on (one batch
        shares one stored_ms, so the time alone cannot page)."""
        key = sa.tuple_(runs.c.stored_ms, runs.c.source, runs.c.last_sequence)
        query = (
            sa.select(
                runs.c.source,
                runs.c.first_sequence,
                runs.c.stored_ms,
                runs.c.envelopes,
            )
            .where(runs.c.stored_ms >= after[0], key > sa.tuple_(*after), runs.c.topic == topic)
            .order_by(runs.c.stored_ms, runs.c.source, runs.c.first_sequence)
            .limit(limit)  # each run holds at least one envelope
        )
        out: list[TopicRow] = []
        with read_transaction(self.engine) as conn:
            for r in conn.execute(query):
                start, stored = int(r.first_sequence), int(r.stored_ms)
                for i, envelope in enumerate(unpack(bytes(r.envelopes))):
                    row = TopicRow(r.source, start + i, stored, envelope)
                    if row.key > after:
                        out.append(row)
                        if len(out) == limit:
                            return out
        return out

    def prune(self, retention: timedelta) -> int:
        """Delete envelopes stored longer ago than ``retention``; returns how many."""
        cutoff = int((self._clock() - retention.total_seconds()) * 1000)
        size = runs.c.last_sequence - runs.c.first_sequence + 1
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(size), 0)).where(runs.c.stored_ms < cutoff)
            ).scalar_one()
            if deleted:
                conn.execute(sa.delete(runs).where(runs.c.stored_ms < cutoff))
                lowest = (
                    sa.select(sa.func.min(runs.c.first_sequence))
                    .where(runs.c.source == sources.c.source)
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
        size = runs.c.last_sequence - runs.c.first_sequence + 1
        with read_transaction(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(size), 0))).scalar_one())
