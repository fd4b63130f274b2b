"""Test databases: a fresh SQLite file, or a PostgreSQL schema of its own.

When ``POWERBUS_TEST_PG_URL`` is set, every test that takes the plugin's ``db_url``
fixture runs on PostgreSQL too; set but unreachable fails the test rather than skipping
it, so CI cannot pass on SQLite alone by accident.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import sqlalchemy as sa

__all__ = ["PG_ENV", "postgres_schema", "schema_of_its_own"]

PG_ENV = "POWERBUS_TEST_PG_URL"


@contextmanager
def schema_of_its_own(base_url: str, prefix: str = "powerbus_test") -> Iterator[str]:
    """A URL of ``base_url`` whose search path is a new schema, dropped afterwards (the
    database is shared, so nothing lands in ``public``); raises SQLAlchemy's
    ``OperationalError`` when the server is unreachable."""
    admin = sa.create_engine(base_url, poolclass=sa.pool.NullPool)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except BaseException:
        admin.dispose()
        raise
    url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_schema(base_url: str) -> Iterator[str]:
    """Yield a URL of ``base_url`` whose search path is a new schema; drop it afterwards.
    An unreachable server fails the test (``POWERBUS_TEST_PG_URL`` was set for a reason)."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(schema_of_its_own(base_url))
        except sa.exc.OperationalError as exc:
            pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}")
        yield url
