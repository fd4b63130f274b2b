"""The event store's tables, as SQLAlchemy Core (``migrations/`` creates them).

``events_runs`` holds each envelope once, in runs: one row per run of consecutive
envelopes of one source and topic (first..last sequence, the envelopes packed in one
blob, see ``batch.pack``). A row per envelope cost the store ~4 µs an envelope in
primary-key and index entries; a row per run costs that once per batch and source. The
store writes only what no stored run covers, so however many bus instances forwarded an
envelope, or a publisher re-sent it, it is stored once. Times are integers (microseconds
of the publisher's clock, milliseconds of the storing bus's clock) so they compare the
same on every database.

``events_sources`` holds, per source, the highest sequence up to which the log has no
gap (``latest_sequence``) and the lowest still stored. Publishers re-send from
``latest_sequence + 1``, so "latest" must mean contiguous: a gap left by a crashed bus
would otherwise hide behind later events and never be filled.

>>> sorted(t.name for t in tables.sorted_tables)
['events_runs', 'events_sources']
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["runs", "sources", "tables"]

tables = sa.MetaData()

runs = sa.Table(
    "events_runs",
    tables,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("first_sequence", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("published_us", sa.BigInteger, nullable=False),
    sa.Column("stored_ms", sa.BigInteger, nullable=False),
    sa.Column("envelopes", sa.LargeBinary, nullable=False),
    sa.Index("ix_events_runs_stored_ms", "stored_ms"),
)
"""Every stored envelope, byte for byte as published, in runs that never overlap."""

sources = sa.Table(
    "events_sources",
    tables,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("latest_sequence", sa.BigInteger, nullable=False),
    sa.Column("earliest_sequence", sa.BigInteger, nullable=False),
    sa.Column("latest_published_us", sa.BigInteger, nullable=False),
)
"""Per source: contiguous high-water mark and the oldest sequence not yet pruned."""
