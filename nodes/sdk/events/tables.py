"""The SDK's event tables, in the node's own database (``migrations/`` creates them).

``events_outbox`` holds envelopes written in the same transaction as the change they
announce, until the bus has stored them; ``events_outbox_sources`` numbers each source
without gaps (its row is locked by the UPDATE until commit, so concurrent writers take
turns and a rolled-back change leaves no hole). ``events_positions`` is where a
subscriber has got to, per source, saved with whatever it did with the events.

>>> sorted(t.name for t in tables.sorted_tables)
['events_outbox', 'events_outbox_sources', 'events_positions']
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["outbox", "outbox_sources", "positions", "tables"]

tables = sa.MetaData()

outbox = sa.Table(
    "events_outbox",
    tables,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
)

outbox_sources = sa.Table(
    "events_outbox_sources",
    tables,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
)

positions = sa.Table(
    "events_positions",
    tables,
    sa.Column("subscriber", sa.String(128), primary_key=True),
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
)
