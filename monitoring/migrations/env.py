"""Alembic environment: migrates on the connection ``Monitoring.start()`` hands over.

Monitoring runs its migrations itself (``powerbus.monitoring.database.migrate``) in the
transaction it opened, with its own version table beside the registry's. Imported
outside alembic (by a doctest collector, say) the module does nothing.
"""

from __future__ import annotations

from alembic import context

from powerbus.monitoring.database import VERSION_TABLE
from powerbus.monitoring.tables import tables


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError("monitoring migrations run from powerbus.monitoring.database.migrate")
    context.configure(
        connection=connection,
        target_metadata=tables,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        # Only our tables: the registry's live in the same database under its own version.
        include_name=lambda name, type_, _parent: type_ != "table" or _ours(name),
    )
    with context.begin_transaction():
        context.run_migrations()


def _ours(name: str | None) -> bool:
    return bool(name) and str(name).startswith("monitoring_")


if hasattr(context, "config"):  # only while alembic runs this file
    run_migrations()
