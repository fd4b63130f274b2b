"""The CRM store's Alembic history builds exactly the tables the code declares, on its own
version table, beside other stores' tables; and the package's public names are pinned."""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from powerbus.nodes.crm.store.migrations import MIGRATIONS
from powerbus.nodes.crm.store.tables import tables


def test_migrations_match_the_declared_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, type_, _parent: (
                    type_ != "table" or name in tables.tables
                )
            },
        )
        assert compare_metadata(context, tables) == []
        assert sa.inspect(conn).has_table("crm_alembic_version")


def test_migrating_again_changes_nothing(engine: Engine) -> None:
    MIGRATIONS.run(engine)  # every node start runs it
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM crm_alembic_version").scalar_one()
    assert version == "c0001"


def test_public_names() -> None:
    crm = importlib.import_module("powerbus.nodes.crm")
    assert crm.__all__ == ["AUDIENCE_KEY", "Audience", "CrmNode", "CrmSettings", "PanoramicView"]
    assert all(hasattr(crm, name) for name in crm.__all__)
