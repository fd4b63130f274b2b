"""Alembic environment: migrates on the connection ``Registry.start()`` hands over.

The registry runs migrations itself (``_database.migrate``), in the transaction it opened,
so there is no alembic.ini and no URL here. Imported outside alembic (by a doctest
collector, say) the module does nothing.
"""

from __future__ import annotations

from alembic import context

from powerbus.bus.registry._database import VERSION_TABLE
from powerbus.bus.registry._tables import tables


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError("registry migrations run from powerbus.bus.registry._database.migrate")
    context.configure(
        connection=connection,
        target_metadata=tables,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # only while alembic runs this file
    run_migrations()
