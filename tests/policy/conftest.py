"""A database per test: SQLite, and PostgreSQL too when POWERBUS_TEST_PG_URL is set (a
schema of its own, dropped afterwards; set but unreachable fails rather than skips)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

PG_ENV = "POWERBUS_TEST_PG_URL"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_kind" in metafunc.fixturenames:
        kinds = [pytest.param("sqlite", id="sqlite")]
        if os.environ.get(PG_ENV):
            kinds.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))
        metafunc.parametrize("db_kind", kinds)


@pytest.fixture
def db_url(db_kind: str, tmp_path: Any) -> Iterator[str]:
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin = sa.create_engine(os.environ[PG_ENV], poolclass=sa.pool.NullPool)
    schema = f"policy_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}")
    url = sa.make_url(os.environ[PG_ENV]).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
