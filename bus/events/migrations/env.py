"""Alembic environment: migrates on the connection ``EventStore.open()`` hands over
(:meth:`~powerbus.bus.kernel.database.Migrations.run`), so there is no alembic.ini and no
URL here. Imported outside alembic (by a doctest collector, say) the module does nothing.
"""

from __future__ import annotations

from alembic import context

from powerbus.bus.events.migrations import MIGRATIONS
from powerbus.bus.events.tables import tables

if hasattr(context, "config"):  # only while alembic runs this file
    MIGRATIONS.configure(context, tables)
