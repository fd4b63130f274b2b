"""Fixtures for the metering tests: a migrated readings store on the plugin's ``db_url``
(SQLite, and PostgreSQL when POWERBUS_TEST_PG_URL is set), and a clock tests move."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import create_engine
from powerbus.nodes.metering.store import ReadingStore


class Clock:
    """A clock that stands still until a test moves it (thread-safe enough: one writer)."""

    def __init__(self, now: datetime = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engines(db_url: str) -> Iterator[Callable[[], Engine]]:
    """``engines()`` opens another engine on the test's database (each like a separate
    process's); the first call also migrates it. All are disposed at the end."""
    opened: list[Engine] = []

    def open_engine() -> Engine:
        engine = create_engine(db_url)
        if not opened:
            ReadingStore(engine).migrate()
        opened.append(engine)
        return engine

    yield open_engine
    for engine in opened:
        engine.dispose()


@pytest.fixture
def store(engines: Callable[[], Engine]) -> ReadingStore:
    return ReadingStore(engines())
