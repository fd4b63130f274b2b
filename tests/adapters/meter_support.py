"""What the meter adapter tests share besides fixtures: the farm's start time, fast
line settings, and helpers to reach the farm's control endpoint and pick meters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from powerbus.adapters.meters import LineConfig, MeterSpec, Model
from powerbus.adapters.meters.sim import MeterFarm

# A fixed Wednesday afternoon (local 14:00) keeps load shapes and TOU periods predictable.
START = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)
FAST = LineConfig(request_timeout=timedelta(seconds=0.3), connect_timeout=timedelta(seconds=1))

FarmFactory = Callable[..., Awaitable[MeterFarm]]


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
