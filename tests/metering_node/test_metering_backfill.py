"""Backfill against the meter farm over real frames: a DL/T 645 line is cut for several
15-minute intervals (the farm's clock and the poller's run 900× fast), the poller
estimates the gap and reports the silence, and when the line is back the gap is
replaced by the meters' own load-profile records, value for value what the simulator
recorded, each interval stored once, the estimates kept in the history."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from powerbus.adapters.meters import Acquisition, LineConfig, Model
from powerbus.adapters.meters.sim import FarmSettings, MeterFarm
from powerbus.bus.kernel.database import create_engine
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.backfill import Backfill
from powerbus.nodes.metering.convert import kwh_to_wh
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.journal import DeviceEvents
from powerbus.nodes.metering.meters import MeterCatalog, meter_from_spec
from powerbus.nodes.metering.ownership import LineOwnership
from powerbus.nodes.metering.poller import Poller, PollerSettings
from powerbus.nodes.metering.store import FORWARD_DELTA_KWH, ReadingStore
from powerbus.nodes.metering.vee import QualityCode

SPEED = 900.0  # one 15-minute interval per real second
INTERVAL = timedelta(minutes=15)


@pytest.fixture
async def farm() -> AsyncIterator[MeterFarm]:
    farm = MeterFarm(FarmSettings(meters=4, gateways=2, speed=SPEED, baud=115200, seed=11))
    await farm.start()
    yield farm
    await farm.stop()


async def wait_until(check: Callable[[], bool], *, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_cut_line_is_backfilled_from_the_meters_own_records(
    farm: MeterFarm, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'metering.db'}")
    store = ReadingStore(engine)
    store.migrate()
    catalog = MeterCatalog(engine)
    catalog.put_many([meter_from_spec(s, interval=INTERVAL) for s in farm.specs])
    clock = farm.clock.now
    acquisition = Acquisition(config=LineConfig(request_timeout=timedelta(seconds=0.1)))
    poller = Poller(
        store=store,
        catalog=catalog,
        events=MeteringEvents(DeviceEvents(engine), None),
        acquisition=acquisition,
        ownership=LineOwnership(engine, instance_id="t", ttl=timedelta(days=1), clock=clock),
        backfill=Backfill(store=store, acquisition=acquisition, interval=INTERVAL),
        settings=PollerSettings(interval=INTERVAL, lease_ttl=timedelta(days=1)),
        clock=clock,
        time_scale=SPEED,
    )
    dlt645 = [s for s in farm.specs if s.model is Model.DLT645]
    line = str(dlt645[0].gateway)
    on_line = [s.meter_id for s in dlt645 if str(s.gateway) == line]

    def stored(meter_id: str) -> dict[datetime, tuple[int | None, QualityCode]]:
        now = clock()
        values = store.readings([meter_id], now - timedelta(days=1), now + INTERVAL)
        return {v.value.end: (v.value.wh, v.value.quality) for v in values}

    await poller.start()
    try:
        await wait_until(lambda: len(stored(on_line[0])) >= 2, what="two polled intervals")
        farm.gateways[[str(a) for a in farm.addresses].index(line)].line.cut(None)
        cut_at = clock()
        await wait_until(
            lambda: sum(1 for e in stored(on_line[0]) if e > cut_at) >= 3,
            what="three intervals estimated while the line is cut",
        )
        estimated = {e for e, (_, q) in stored(on_line[0]).items() if e > cut_at}
        assert all(stored(on_line[0])[e][1] is QualityCode.ESTIMATED for e in estimated)
        farm.gateways[[str(a) for a in farm.addresses].index(line)].line.restore()
        await wait_until(
            lambda: (
                {r.meter_id for r in (poller.backfill.results if poller.backfill else [])}
                >= set(on_line)
            ),
            what="backfill of the line's meters",
        )
    finally:
        await poller.stop()
        await acquisition.stop()

    assert poller.backfill is not None
    for result in poller.backfill.results:
        assert not result.error, result
    for meter_id in on_line:
        values = stored(meter_id)
        gap = sorted(e for e in values if e > cut_at and e <= max(estimated) + INTERVAL)
        local = (
            (gap[0] - INTERVAL).astimezone(ZoneInfo(poller.settings.time_zone)).replace(tzinfo=None)
        )
        recorded = await asyncio.to_thread(
            farm_profile, farm, meter_id, local.isoformat(), len(gap) + 1
        )
        expected = {
            end: kwh_to_wh(round(b, 2)) - kwh_to_wh(round(a, 2))
            for end, a, b in zip(gap, recorded, recorded[1:], strict=False)
        }
        got = {e: values[e] for e in gap}
        assert got == {e: (wh, QualityCode.VALID) for e, wh in expected.items()}, meter_id
        superseded = store.superseded(meter_id, FORWARD_DELTA_KWH, gap[0], gap[-1] + INTERVAL)
        assert {s.stored.value.end for s in superseded} >= estimated & set(gap)
        assert all(s.stored.value.quality is QualityCode.ESTIMATED for s in superseded)
    events = DeviceEvents(engine).page(meter_ids=on_line)[0]
    names = {(e.meter.meter_id, e.event_type.name) for e in events}
    for meter_id in on_line:
        assert (meter_id, "no_response") in names and (meter_id, "communication_restored") in names
    assert all(e.severity != pb.EVENT_SEVERITY_UNSPECIFIED for e in events)
    engine.dispose()


def farm_profile(farm: MeterFarm, meter_id: str, start: str, count: int) -> list[float]:
    """The simulator's own forward-register records from ``start`` (meter local time)."""
    assert farm.control_address is not None
    request = {"op": "profile", "meter": meter_id, "start": start, "count": count}
    with socket.create_connection(
        (farm.control_address.host, farm.control_address.port), timeout=5
    ) as sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        reply = json.loads(sock.makefile().readline())
    assert reply["ok"], reply
    return [forward for _, forward, _ in reply["records"]]
