"""Where a subscriber has got to, per source, kept in the subscriber's database.

Save positions in the same transaction as what the handler did with the events, and a
restart neither repeats nor skips any: the subscriber resumes after the saved position
and replays the rest.

>>> from powerbus.bus.kernel.database import write_transaction
>>> store = SqlPositions.open("sqlite://", subscriber="crm-tickets")
>>> with write_transaction(store.engine) as conn:
...     store.save(conn, {"metering-1": 41})
>>> store.load()
{'metering-1': 41}
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import read_transaction
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.sdk.events.outbox import EventTablesUser
from powerbus.nodes.sdk.events.tables import positions

__all__ = ["SqlPositions"]


class SqlPositions(EventTablesUser):
    """One subscriber's positions in ``events_positions``."""

    def __init__(self, engine: Engine, *, subscriber: str) -> None:
        if not subscriber:
            raise InvalidArgument("subscriber", "must not be empty")
        super().__init__(engine)
        self.subscriber = subscriber

    @classmethod
    def open(cls, db_url: str, *, subscriber: str) -> SqlPositions:
        """Positions on a database of their own (the engine is disposed by :meth:`close`)."""
        store = cls(cls._engine_for(db_url), subscriber=subscriber)
        store._own()
        return store

    def load(self) -> dict[str, int]:
        query = sa.select(positions.c.source, positions.c.sequence).where(
            positions.c.subscriber == self.subscriber
        )
        with read_transaction(self.engine) as conn:
            return {r.source: int(r.sequence) for r in conn.execute(query)}

    def save(self, conn: Connection, marks: Mapping[str, int]) -> None:
        """Record ``marks`` in the caller's transaction ``conn``."""
        c = positions.c
        for source, sequence in marks.items():
            updated = conn.execute(
                sa.update(positions)
                .where(c.subscriber == self.subscriber, c.source == source)
                .values(sequence=sequence)
            ).rowcount
            if not updated:
                conn.execute(
                    sa.insert(positions).values(
                        subscriber=self.subscriber, source=source, sequence=sequence
                    )
                )
