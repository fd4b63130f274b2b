"""The transactional outbox: an envelope is written in the same database transaction as
the change it announces, so a committed change always has its event, and a rolled-back
one never has.

The publisher relays the outbox to the bus and deletes rows once the bus has stored
them (``GetLatestSequences``); what the bus lacks after a restart, of either side, is
still here and is sent again.

>>> from powerbus.bus.kernel.database import write_transaction
>>> from powerbus.events.v1 import events_pb2
>>> box = Outbox.open("sqlite://", source="billing-1")
>>> with write_transaction(box.engine) as conn:
...     env = box.add(conn, events_pb2.BillIssued(bill_id="B1"))
>>> env.sequence, [row.sequence for row in box.pending(after=0)]
(1, [1])
>>> box.close()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from google.protobuf import message
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import create_engine, read_transaction, write_transaction
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events.envelopes import envelope
from powerbus.nodes.sdk.events.migrations import MIGRATIONS
from powerbus.nodes.sdk.events.tables import outbox, outbox_sources

__all__ = ["EventTablesUser", "Outbox", "OutboxRow", "open_event_tables"]


def open_event_tables(engine: Engine) -> None:
    """Create or upgrade the SDK's event tables in ``engine``'s database."""
    MIGRATIONS.run(engine)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    sequence: int
    topic: str
    envelope: bytes


class EventTablesUser:
    """Works on the SDK's event tables through an engine that is the node's own (left
    open), or one it opened for itself (:meth:`_own`, disposed by :meth:`close`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._owned = False

    @staticmethod
    def _engine_for(db_url: str) -> Engine:
        engine = create_engine(db_url)
        open_event_tables(engine)
        return engine

    def _own(self) -> None:
        self._owned = True

    def close(self) -> None:
        if self._owned:
            self.engine.dispose()


class Outbox(EventTablesUser):
    """One source's outbox in the node's database (the engine is the node's own)."""

    def __init__(self, engine: Engine, *, source: str) -> None:
        if not source:
            raise InvalidArgument("source", "must not be empty")
        super().__init__(engine)
        self.source = source

    @classmethod
    def open(cls, db_url: str, *, source: str) -> Outbox:
        """An outbox on a database of its own (the engine is disposed by :meth:`close`)."""
        box = cls(cls._engine_for(db_url), source=source)
        box._own()
        return box

    def add(
        self,
        conn: Connection,
        payload: message.Message,
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> events_pb2.Envelope:
        """Stage one event in the caller's transaction ``conn``; sent once it commits."""
        return self.add_many(conn, [payload], topic=topic, headers=headers)[0]

    def add_many(
        self,
        conn: Connection,
        payloads: Sequence[message.Message],
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[events_pb2.Envelope]:
        """Stage several events in one go (one counter update, one executemany)."""
        if not payloads:
            return []
        last = self._take(conn, len(payloads))
        first = last - len(payloads) + 1
        envelopes = [
            envelope(self.source, first + i, p, topic=topic, headers=headers)
            for i, p in enumerate(payloads)
        ]
        conn.execute(
            sa.insert(outbox),
            [
                {
                    "source": self.source,
                    "sequence": e.sequence,
                    "topic": e.topic,
                    "envelope": e.SerializeToString(),
                }
                for e in envelopes
            ],
        )
        return envelopes

    def _take(self, conn: Connection, count: int) -> int:
        row = outbox_sources.c
        # The UPDATE locks the counter row until the caller commits: gapless numbering.
        updated = conn.execute(
            sa.update(outbox_sources)
            .where(row.source == self.source)
            .values(last_sequence=row.last_sequence + count)
        ).rowcount
        if not updated:
            conn.execute(sa.insert(outbox_sources).values(source=self.source, last_sequence=count))
            return count
        query = sa.select(row.last_sequence).where(row.source == self.source)
        return int(conn.execute(query).scalar_one())

    def continue_after(self, sequence: int) -> int:
        """Make sure numbering continues after ``sequence`` (what the bus has stored of
        this source), e.g. when the node's database is new; returns the last sequence."""
        with write_transaction(self.engine) as conn:
            row = outbox_sources.c
            current = conn.execute(
                sa.select(row.last_sequence).where(row.source == self.source)
            ).scalar_one_or_none()
            if current is None:
                conn.execute(
                    sa.insert(outbox_sources).values(source=self.source, last_sequence=sequence)
                )
                return sequence
            if current < sequence:
                conn.execute(
                    sa.update(outbox_sources)
                    .where(row.source == self.source)
                    .values(last_sequence=sequence)
                )
                return sequence
            return int(current)

    def last_sequence(self) -> int:
        """The sequence of the last event staged (0 before the first)."""
        row = outbox_sources.c
        query = sa.select(row.last_sequence).where(row.source == self.source)
        with read_transaction(self.engine) as conn:
            return int(conn.execute(query).scalar_one_or_none() or 0)

    def pending(self, *, after: int, limit: int = 10_000) -> list[OutboxRow]:
        """Staged envelopes with sequence above ``after``, oldest first."""
        query = (
            sa.select(outbox.c.sequence, outbox.c.topic, outbox.c.envelope)
            .where(outbox.c.source == self.source, outbox.c.sequence > after)
            .order_by(outbox.c.sequence)
            .limit(limit)
        )
        with read_transaction(self.engine) as conn:
            return [
                OutboxRow(int(r.sequence), r.topic, bytes(r.envelope)) for r in conn.execute(query)
            ]

    def acknowledge(self, upto: int) -> int:
        """Forget what the bus has stored (sequence ≤ ``upto``); returns how many rows."""
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(
                sa.delete(outbox).where(outbox.c.source == self.source, outbox.c.sequence <= upto)
            ).rowcount
        return int(deleted or 0)

    def count(self) -> int:
        """Rows not yet acknowledged."""
        query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.source == self.source)
        with read_transaction(self.engine) as conn:
            return int(conn.execute(query).scalar_one())
