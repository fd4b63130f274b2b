"""Fixtures of the CRM tests: a migrated database, a clock tests move, the shipped calendar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from crm_helpers import FakeClock
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import create_engine
from powerbus.nodes.crm.store.customers import CustomerStore
from powerbus.nodes.crm.store.migrations import MIGRATIONS
from powerbus.nodes.crm.tickets.calendar import WorkingCalendar
from powerbus.nodes.crm.tickets.service import TicketService


@pytest.fixture
def clock() -> FakeClock:
    # A Friday morning in Beijing time (08:00 +08:00).
    return FakeClock(datetime(2026, 12, 4, 0, 0, tzinfo=timezone.utc))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    MIGRATIONS.run(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def calendar() -> WorkingCalendar:
    return WorkingCalendar.shipped()


@pytest.fixture
def customers(engine: Engine, clock: FakeClock) -> CustomerStore:
    return CustomerStore(engine, clock=clock)


@pytest.fixture
def tickets(engine: Engine, clock: FakeClock, calendar: WorkingCalendar) -> TicketService:
    return TicketService(engine, calendar=calendar, node_id="crm-test", clock=clock)
