"""Event store: envelopes in runs (one row per run of consecutive envelopes of a source
and topic) instead of a row each; existing rows become runs of one.

Revision ID: e0002
Revises: e0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from powerbus.bus.events.batch import pack, unpack

revision = "e0002"
down_revision = "e0001"
branch_labels = None
depends_on = None

_CHUNK = 5_000  # rows copied per round trip, so a large log is not held in memory


def upgrade() -> None:
    runs = op.create_table(
        "events_runs",
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("first_sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("published_us", sa.BigInteger, nullable=False),
        sa.Column("stored_ms", sa.BigInteger, nullable=False),
        sa.Column("envelopes", sa.LargeBinary, nullable=False),
    )
    assert runs is not None
    op.create_index("ix_events_runs_stored_ms", "events_runs", ["stored_ms"])
    conn = op.get_bind()
    old = sa.table(
        "events_log",
        sa.column("source"),
        sa.column("sequence"),
        sa.column("topic"),
        sa.column("published_us"),
        sa.column("stored_ms"),
        sa.column("envelope"),
    )
    after = ("", 0)
    while True:
        rows = conn.execute(
            sa.select(old)
            .where(sa.tuple_(old.c.source, old.c.sequence) > sa.tuple_(*after))
            .order_by(old.c.source, old.c.sequence)
            .limit(_CHUNK)
        ).all()
        if not rows:
            break
        conn.execute(
            runs.insert(),
            [
                {
                    "source": r.source,
                    "first_sequence": r.sequence,
                    "last_sequence": r.sequence,
                    "topic": r.topic,
                    "published_us": r.published_us,
                    "stored_ms": r.stored_ms,
                    "envelopes": pack([bytes(r.envelope)]),
                }
                for r in rows
            ],
        )
        after = (rows[-1].source, rows[-1].sequence)
    op.drop_index("ix_events_log_stored_ms", "events_log")
    op.drop_table("events_log")


def downgrade() -> None:
    log = op.create_table(
        "events_log",
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("published_us", sa.BigInteger, nullable=False),
        sa.Column("stored_ms", sa.BigInteger, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
    )
    assert log is not None
    op.create_index("ix_events_log_stored_ms", "events_log", ["stored_ms"])
    conn = op.get_bind()
    runs = sa.table(
        "events_runs",
        sa.column("source"),
        sa.column("first_sequence"),
        sa.column("topic"),
        sa.column("published_us"),
        sa.column("stored_ms"),
        sa.column("envelopes"),
    )
    after = ("", 0)
    while True:
        rows = conn.execute(
            sa.select(runs)
            .where(sa.tuple_(runs.c.source, runs.c.first_sequence) > sa.tuple_(*after))
            .order_by(runs.c.source, runs.c.first_sequence)
            .limit(_CHUNK // 100)
        ).all()
        if not rows:
            break
        conn.execute(
            log.insert(),
            [
                {
                    "source": r.source,
                    "sequence": r.first_sequence + i,
                    "topic": r.topic,
                    "published_us": r.published_us,
                    "stored_ms": r.stored_ms,
                    "envelope": envelope,
                }
                for r in rows
                for i, envelope in enumerate(unpack(bytes(r.envelopes)))
            ],
        )
        after = (rows[-1].source, rows[-1].first_sequence)
    op.drop_index("ix_events_runs_stored_ms", "events_runs")
    op.drop_table("events_runs")
