"""Registry tables: nodes, the revision counter and the change log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_nodes",
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
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("down_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_registry_nodes_lease_expires_at", "registry_nodes", ["lease_expires_at"])
    op.create_index("ix_registry_nodes_down_since", "registry_nodes", ["down_since"])
    state = op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "revision": 0}])
    op.create_table(
        "registry_changes",
        sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_registry_changes_changed_at", "registry_changes", ["changed_at"])


def downgrade() -> None:
    op.drop_table("registry_changes")
    op.drop_table("registry_state")
    op.drop_table("registry_nodes")
