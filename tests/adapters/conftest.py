"""Fixtures of the meter adapter tests: an in-process meter farm on loopback ports that
is stopped when the test ends, and a client of its JSON-lines control endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from powerbus.adapters.meters import Acquisition, LineConfig, MeterSpec, Model
from powerbus.adapters.meters.sim import FarmSettings, MeterFarm

# A fixed Wednesday afternoon (local 14:00) keeps load shapes and TOU periods predictable.
START = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)
FAST = LineConfig(request_timeout=timedelta(seconds=0.3), connect_timeout=timedelta(seconds=1))

FarmFactory = Callable[..., Awaitable[MeterFarm]]


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


async def control(farm: MeterFarm, **request: Any) -> dict[str, Any]:
    """One request to the farm's control endpoint, over its socket."""
    assert farm.control_address is not None
    reader, writer = await asyncio.open_connection(
        farm.control_address.host, farm.control_address.port
    )
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 5))
    finally:
        writer.close()
        await writer.wait_closed()
    assert reply.pop("ok"), reply
    return reply


def first(farm: MeterFarm, model: Model, skip: int = 0) -> MeterSpec:
    """The ``skip``-th meter of ``model`` in the farm."""
    return [s for s in farm.specs if s.model is model][skip]
