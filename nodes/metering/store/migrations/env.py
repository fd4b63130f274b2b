"""Alembic environment: migrates on the connection ``Migrations.run`` hands over, so
there is no alembic.ini and no URL here. Imported outside alembic the module does nothing.
"""

from __future__ import annotations

from alembic import context

from powerbus.nodes.metering.store._tables import tables
from powerbus.nodes.metering.store.migrations import MIGRATIONS

if hasattr(context, "config"):  # only while alembic runs this file
    MIGRATIONS.configure(context, tables)
