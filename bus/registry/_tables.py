"""The registry's tables, as the running code sees them (migrations/ creates them).

``registry_state`` holds one row, the revision: every change takes it ``FOR UPDATE``,
adds one, and writes a ``registry_changes`` row in the same transaction. Because the row
lock is held until commit, revisions become visible in order, so a poller that reads
"changes after N" never skips a change that commits late.
"""

from __future__ import annotations

import sqlalchemy as sa

from powerbus.bus.kernel.database import UtcDateTime

__all__ = ["STATE_ROW", "UtcDateTime", "changes", "nodes", "state", "tables"]

STATE_ROW = 1


tables = sa.MetaData()

nodes = sa.Table(
    "registry_nodes",
    tables,
    sa.Column("node_id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("address", sa.String(300), nullable=False),
    sa.Column("services", sa.JSON, nullable=False),
    sa.Column("weight", sa.Integer, nullable=False),
    sa.Column("zone", sa.String(64), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("health", sa.String(16), nullable=False),
    sa.Column("dependencies", sa.JSON, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("load", sa.JSON, nullable=False),
    sa.Column("file_descriptor_set", sa.LargeBinary, nullable=False),
    sa.Column("lease_id", sa.String(64), nullable=False),
    sa.Column("lease_ttl_ms", sa.Integer, nullable=False),
    sa.Column("registered_at", UtcDateTime, nullable=False),
    sa.Column("last_heartbeat_at", UtcDateTime, nullable=False),
    sa.Column("lease_expires_at", UtcDateTime, nullable=False),
    sa.Column("down_since", UtcDateTime, nullable=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Index("ix_registry_nodes_lease_expires_at", "lease_expires_at"),
    sa.Index("ix_registry_nodes_down_since", "down_since"),
)

state = sa.Table(
    "registry_state",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

changes = sa.Table(
    "registry_changes",
    tables,
    sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("node_id", sa.String(128), nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
    sa.Index("ix_registry_changes_changed_at", "changed_at"),
)
