"""The registry's engine: creating it from a URL, transactions, and running migrations.

>>> engine = create_registry_engine("sqlite://")
>>> migrate(engine)
>>> with read_transaction(engine) as conn:
...     conn.exec_driver_sql("SELECT revision FROM registry_state").scalar_one()
0
>>> engine.dispose()
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import (
    create_engine,
    read_transaction,
    run_migrations,
    write_transaction,
)

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "create_registry_engine",
    "migrate",
    "read_transaction",
    "write_transaction",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "registry_alembic_version"
# Any fixed number, different for each store: bus instances starting together migrate in turn.
_MIGRATION_LOCK_KEY = 0x706F7765_7262_7573 & 0x7FFFFFFFFFFFFFFF


def create_registry_engine(db_url: str) -> Engine:
    """An engine for ``db_url`` (any SQLAlchemy URL; ``sqlite://`` is in memory)."""
    return create_engine(db_url)


def migrate(engine: Engine) -> None:
    """Bring these tables to the newest revision (safe to run every start)."""
    run_migrations(engine, script_location=MIGRATIONS, lock_key=_MIGRATION_LOCK_KEY)
