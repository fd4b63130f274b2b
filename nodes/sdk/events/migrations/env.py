"""Alembic environment for the SDK's event tables; see
:meth:`~powerbus.bus.kernel.database.Migrations.run`."""

from __future__ import annotations

from alembic import context

from powerbus.nodes.sdk.events.migrations import MIGRATIONS
from powerbus.nodes.sdk.events.tables import tables

if hasattr(context, "config"):  # only while alembic runs this file
    MIGRATIONS.configure(context, tables)
