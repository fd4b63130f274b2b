"""The policy store's tables (the registry's migrations create them, revision 0002).

``policy_state`` holds one row, the revision: a change takes it ``FOR UPDATE``, adds one
and stamps the changed row with it, so pollers that read "revision greater than mine"
see every change in order, as the registry's change log does.
"""

from __future__ import annotations

import sqlalchemy as sa

from powerbus.bus.registry._tables import UtcDateTime

__all__ = ["STATE_ROW", "overrides", "state", "tables"]

STATE_ROW = 1

tables = sa.MetaData()

overrides = sa.Table(
    "policy_overrides",
    tables,
    sa.Column("service", sa.String(300), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
    sa.Index("ix_policy_overrides_revision", "revision"),
)

state = sa.Table(
    "policy_state",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)
