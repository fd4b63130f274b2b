"""The monitoring tables' engine, transactions and migrations, in the registry's database.

>>> engine = create_monitoring_engine("sqlite://")
>>> migrate(engine)
>>> with read_transaction(engine) as conn:
...     conn.exec_driver_sql("SELECT count(*) FROM monitoring_rollups").scalar_one()
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
    "create_monitoring_engine",
    "migrate",
    "read_transaction",
    "write_transaction",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "monitoring_alembic_version"
# Not the registry's key: bus instances starting together migrate each set in turn.
_MIGRATION_LOCK_KEY = 0x6D6F6E69_746F_72 & 0x7FFFFFFFFFFFFFFF


def create_monitoring_engine(db_url: str) -> Engine:
    """An engine for ``db_url`` (any SQLAlchemy URL; ``sqlite://`` is in memory)."""
    return create_engine(db_url, pool_size=2)


def migrate(engine: Engine) -> None:
    """Bring these tables to the newest revision (safe to run every start)."""
    run_migrations(engine, script_location=MIGRATIONS, lock_key=_MIGRATION_LOCK_KEY)
