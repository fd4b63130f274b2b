"""Migrations: a fresh database gets the tables, a restart changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from powerbus.bus.kernel.errors import ConfigError, Unavailable
from powerbus.bus.registry import Registry
from powerbus.bus.registry.migrations import MIGRATIONS

T = 5.0
VERSION_TABLE = MIGRATIONS.version_table
TABLES = {"registry_nodes", "registry_state", "registry_changes", VERSION_TABLE}


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS.script_location))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _inspect(db_url: str) -> tuple[set[str], list[str], int]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            versions = list(
                conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            )
            revision = conn.execute(sa.text("SELECT revision FROM registry_state")).scalar_one()
        return tables, versions, revision
    finally:
        engine.dispose()


def _settings(db_url: str) -> dict[str, object]:
    return {
        "db_url": db_url,
        "lease_ttl": timedelta(seconds=10),
        "sweep_interval": timedelta(milliseconds=50),
    }


async def test_fresh_database_is_migrated_to_head(db_url: str) -> None:
    async with Registry(**_settings(db_url)):  # type: ignore[arg-type]
        tables, versions, revision = await asyncio.to_thread(_inspect, db_url)
    assert tables >= TABLES
    assert versions == [_head()]
    assert revision == 0


async def test_restart_keeps_data_and_migrates_nothing(db_url: str, serve, request_for) -> None:
    first = Registry(**_settings(db_url))  # type: ignore[arg-type]
    await first.start()
    try:
        await (await serve(first)).Register(request_for(), timeout=T)
    finally:
        await first.stop()
    before = await asyncio.to_thread(_inspect, db_url)

    async with Registry(**_settings(db_url)) as second:  # type: ignore[arg-type]
        node = second.directory.node("echo-1")
        assert node is not None and node.address == "127.0.0.1:7001"
        assert second.directory.revision == 1
        assert second.directory.file_descriptors()
    assert await asyncio.to_thread(_inspect, db_url) == before


async def test_instances_starting_together_on_a_fresh_database(db_url: str) -> None:
    registries = [Registry(**_settings(db_url)) for _ in range(3)]  # type: ignore[arg-type]
    try:
        await asyncio.gather(*(r.start() for r in registries))
    finally:
        await asyncio.gather(*(r.stop() for r in registries))
    _tables, versions, _revision = await asyncio.to_thread(_inspect, db_url)
    assert versions == [_head()]


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS.script_location / "env.py").is_file()
    assert any(MIGRATIONS.script_location.joinpath("versions").glob("v*.py"))


async def test_bad_urls_fail_at_start(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^db: "):
        await Registry(db_url="::not a url::", **_rest()).start()
    with pytest.raises(Unavailable):
        missing = tmp_path / "no" / "such" / "dir" / "registry.db"
        await Registry(db_url=f"sqlite:///{missing}", **_rest()).start()


def _rest() -> dict[str, timedelta]:
    return {"lease_ttl": timedelta(seconds=10), "sweep_interval": timedelta(milliseconds=50)}


def test_bad_settings_name_the_setting() -> None:
    for name in ("lease_ttl", "sweep_interval", "down_retention"):
        settings = {**_rest(), "down_retention": timedelta(hours=1), name: timedelta(0)}
        with pytest.raises(ConfigError, match=rf"^{name}: "):
            Registry(db_url="sqlite://", **settings)


async def test_in_memory_sqlite_works(serve, request_for) -> None:
    async with Registry(db_url="sqlite://", **_rest()) as registry:
        await (await serve(registry)).Register(request_for(), timeout=T)
        assert registry.directory.node("echo-1") is not None
