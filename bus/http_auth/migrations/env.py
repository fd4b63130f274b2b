"""Alembic environment: migrates on the connection ``UserStore.open()`` hands over
(:meth:`~powerbus.bus.kernel.database.Migrations.run`), so there is no alembic.ini and no
URL here. Imported outside alembic (by a doctest collector, say) the module does nothing.
"""

from __future__ import annotations

from alembic import context

from powerbus.bus.http_auth.migrations import MIGRATIONS
from powerbus.bus.http_auth.tables import tables

if hasattr(context, "config"):  # only while alembic runs this file
    MIGRATIONS.configure(context, tables)
