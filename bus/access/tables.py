"""The access store's tables, as SQLAlchemy Core (``migrations/`` creates them).

``access_tokens`` keeps each bearer token's id, the identity it proves and a SHA-256 of
its secret: the secret itself is shown once, at creation, and never stored. Tokens are
random 256-bit values, so a plain hash is enough (no password-style stretching needed).

``access_rules`` holds the rules :mod:`powerbus.bus.kernel.access_rules` decides with;
``access_audit`` is the append-only record of every administrative change: nothing in
powerbus updates or deletes its rows.

>>> sorted(t.name for t in tables.sorted_tables)
['access_audit', 'access_rules', 'access_tokens']
"""

from __future__ import annotations

import sqlalchemy as sa

from powerbus.bus.kernel.database import UtcDateTime

__all__ = ["audit", "rules", "tables", "tokens"]

tables = sa.MetaData()

tokens = sa.Table(
    "access_tokens",
    tables,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("identity", sa.String(200), nullable=False),
    sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)

rules = sa.Table(
    "access_rules",
    tables,
    sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("identity", sa.String(200), nullable=False),
    sa.Column("right", sa.String(16), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("effect", sa.String(8), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

audit = sa.Table(
    "access_audit",
    tables,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("identity", sa.String(200), nullable=False),
    sa.Column("peer", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Index("ix_access_audit_at", "at"),
)
