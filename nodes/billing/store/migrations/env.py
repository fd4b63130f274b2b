"""Alembic environment of the billing store: migrates on the connection
:meth:`~powerbus.bus.kernel.database.Migrations.run` hands over. Imported outside alembic
the module does nothing."""

from __future__ import annotations

from alembic import context

from powerbus.nodes.billing.store.migrations import MIGRATIONS
from powerbus.nodes.billing.store.tables import metadata

if hasattr(context, "config"):  # only while alembic runs this file
    MIGRATIONS.configure(context, metadata)
