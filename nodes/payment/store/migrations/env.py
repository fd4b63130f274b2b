"""Alembic environment: migrates on the connection ``Migrations.run`` hands over, so
there is no alembic.ini and no URL here. Imported outside alembic it does nothing.
"""

from __future__ import annotations

from alembic import context

from powerbus.nodes.payment.store.migrations import MIGRATIONS
from powerbus.nodes.payment.store.tables import tables

if hasattr(context, "config"):  # only while alembic runs this file
    MIGRATIONS.configure(context, tables)
