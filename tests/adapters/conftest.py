"""Fixtures of the meter adapter tests: an in-process meter farm on loopback ports that
is stopped when the test ends, and a client of its JSON-lines control endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from meter_support import FAST, START, FarmFactory

from powerbus.adapters.meters import Acquisition
from powerbus.adapters.meters.sim import FarmSettings, MeterFarm


@pytest.fixture
async def farm_factory() -> AsyncIterator[FarmFactory]:
    """``await farm_factory(meters=.., gateways=.., **settings)``; stopped at teardown."""
    farms: list[MeterFarm] = []

    async def make(**options: Any) -> MeterFarm:
        options.setdefault("start", START)
        farm = MeterFarm(FarmSettings(**options))
        farms.append(farm)
        await farm.start()
        return farm

    yield make
    for farm in reversed(farms):
        await farm.stop()


@pytest.fixture
async def acquisition() -> AsyncIterator[Acquisition]:
    async with Acquisition(config=FAST) as acq:
        yield acq
