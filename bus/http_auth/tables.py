"""The tables of HTTP users, their API tokens and their login sessions (SQLAlchemy Core).

Only digests of tokens and session ids are kept (see :mod:`.passwords`); a user's tokens
and sessions go with the user.

>>> sorted(t.name for t in tables.sorted_tables)
['http_sessions', 'http_tokens', 'http_users']
"""

from __future__ import annotations

import sqlalchemy as sa

from powerbus.bus.kernel.database import UtcDateTime

__all__ = ["sessions", "tables", "tokens", "users"]

tables = sa.MetaData()

users = sa.Table(
    "http_users",
    tables,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("password_changed_at", UtcDateTime, nullable=False),
)
"""One row a user: the role and the scrypt hash of the password."""

tokens = sa.Table(
    "http_tokens",
    tables,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False, index=True),
    sa.Column("label", sa.String(100), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
"""API tokens for scripts (``Authorization: Bearer``), by SHA-256 of the token."""

sessions = sa.Table(
    "http_sessions",
    tables,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
)
"""Login sessions (the dashboard's cookie), by SHA-256 of the session id; every bus
instance on the database honours them."""
