"""A month the node never polled is billable from the registers the DL/T 645 meters froze
at its boundaries, read back over real frames on first contact; meters without history
(SDM, pulse) stay incomplete for it. The farm starts at a fixed instant mid-month."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from powerbus.adapters.meters import Acquisition, LineConfig, Model
from powerbus.adapters.meters.sim import FarmSettings, MeterFarm
from powerbus.bus.kernel.database import create_engine
from powerbus.nodes.metering.convert import kwh_to_wh
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.journal import DeviceEvents
from powerbus.nodes.metering.meters import MeterCatalog, meter_from_spec
from powerbus.nodes.metering.ownership import LineOwnership
from powerbus.nodes.metering.poller import Poller, PollerSettings
from powerbus.nodes.metering.settlement import month_start_stored
from powerbus.nodes.metering.store import ReadingStore, RegisterRecord
from powerbus.nodes.metering.store._windows import LocalWindow

ZONE = ZoneInfo("Asia/Shanghai")
INTERVAL = timedelta(seconds=2)
START = datetime(2026, 12, 10, 3, 0, tzinfo=timezone.utc)  # 11:00 on 10 December, local
NOVEMBER = (datetime(2026, 11, 1, tzinfo=ZONE), datetime(2026, 12, 1, tzinfo=ZONE))


@pytest.fixture
async def farm() -> AsyncIterator[MeterFarm]:
    farm = MeterFarm(FarmSettings(meters=4, gateways=2, baud=115200, seed=5, start=START))
    await farm.start()
    yield farm
    await farm.stop()


async def wait_until(check: Callable[[], bool], *, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def poller_for(farm: MeterFarm, path: Path, *, readback: int) -> tuple[Poller, ReadingStore]:
    engine = create_engine(f"sqlite:///{path}")
    store = ReadingStore(engine)
    store.migrate()
    catalog = MeterCatalog(engine)
    catalog.put_many([meter_from_spec(s, interval=INTERVAL) for s in farm.specs])
    acquisition = Acquisition(config=LineConfig(request_timeout=timedelta(seconds=0.5)))
    poller = Poller(
        store=store,
        catalog=catalog,
        events=MeteringEvents(DeviceEvents(engine), None),
        acquisition=acquisition,
        ownership=LineOwnership(
            engine, instance_id="t", ttl=timedelta(days=1), clock=farm.clock.now
        ),
        settings=PollerSettings(
            interval=INTERVAL, lease_ttl=timedelta(days=1), freeze_readback_days=readback
        ),
        clock=farm.clock.now,
    )
    return poller, store


async def test_last_month_bills_from_the_freezes_read_back(farm: MeterFarm, tmp_path: Path) -> None:
    poller, store = poller_for(farm, tmp_path / "m.db", readback=62)
    dlt645 = [s.meter_id for s in farm.specs if s.model is Model.DLT645]
    others = [s.meter_id for s in farm.specs if s.model is not Model.DLT645]
    assert dlt645 and others

    def frozen(meter_id: str) -> list[RegisterRecord]:
        regs = store.registers([meter_id], *NOVEMBER)
        return [r.record for r in regs if r.record.reading_type.startswith("11.")]

    await poller.start()
    try:
        await wait_until(lambda: all(frozen(m) for m in dlt645), what="month-start freezes")
    finally:
        await poller.stop()
        await poller.acquisition.stop()

    peak = LocalWindow("peak", 8 * 60, 22 * 60)
    valley = LocalWindow("valley", 22 * 60, 8 * 60)
    for meter_id in dlt645:
        sim = farm.meters[meter_id]
        at_start, _ = sim.registers(NOVEMBER[0].timestamp())
        at_end, _ = sim.registers(NOVEMBER[1].timestamp())
        # value for value what the meter froze (0.01 kWh BCD on the wire)
        expected = kwh_to_wh(round(at_end[0], 2)) - kwh_to_wh(round(at_start[0], 2))
        summary = store.summarize(meter_id, *NOVEMBER, interval=INTERVAL)
        assert summary.complete and summary.wh == expected > 0, meter_id
        assert summary.values_total == 0  # no interval: all from the two freezes
        rates = [
            kwh_to_wh(round(b, 2)) - kwh_to_wh(round(a, 2))
            for a, b in zip(at_start[1:], at_end[1:], strict=True)
        ]
        # A household's meter counts 峰 on rate 2 and 谷 on rate 4: a peak/valley tariff
        # is split rate by rate ...
        two = store.summarize(meter_id, *NOVEMBER, windows=[peak, valley], interval=INTERVAL)
        assert two.complete and dict(two.window_wh) == {"peak": rates[1], "valley": rates[3]}
        assert rates[0] == rates[2] == 0
        # ... while a tariff with no window for a rate the meter used cannot be.
        all_day = LocalWindow("peak", 0, 0)
        assert not store.summarize(
            meter_id, *NOVEMBER, windows=[all_day], interval=INTERVAL
        ).complete
    for meter_id in others:  # no history in the meter: nothing to bill November from
        assert not store.summarize(meter_id, *NOVEMBER, interval=INTERVAL).complete
    # A restarted node finds December's freeze stored and reads nothing back again.
    now = farm.clock.now()
    assert all(month_start_stored(store, m, now, ZONE) for m in dlt645)
    assert not any(month_start_stored(store, m, now, ZONE) for m in others)


async def test_read_back_is_spread_over_polls_and_skips_none(tmp_path: Path) -> None:
    """At 9,600 baud a line's month starts take longer than its interval to read back:
    they are read back over several polls, and the line polls at every interval end."""
    farm = MeterFarm(FarmSettings(meters=8, gateways=2, baud=9600, seed=5, start=START))
    await farm.start()
    try:
        poller, store = poller_for(farm, tmp_path / "m.db", readback=62)
        dlt645 = [s for s in farm.specs if s.model is Model.DLT645]
        gateway = str(dlt645[0].gateway)
        assert len(dlt645) == 4 and {str(s.gateway) for s in dlt645} == {gateway}

        def settled() -> int:
            now = farm.clock.now()
            return sum(month_start_stored(store, s.meter_id, now, ZONE) for s in dlt645)

        await poller.start()
        try:
            await wait_until(
                lambda: any(r.gateway == gateway for r in poller.results), what="a poll"
            )
            after_first = settled()
            await wait_until(lambda: settled() == len(dlt645), what="every month start")
        finally:
            await poller.stop()
            await poller.acquisition.stop()
    finally:
        await farm.stop()
    assert 0 < after_first < len(dlt645)
    ends = [r.end for r in poller.results if r.gateway == gateway]
    assert len(ends) >= 2 and all(b - a == INTERVAL for a, b in itertools.pairwise(ends)), ends


async def test_read_back_can_be_switched_off(farm: MeterFarm, tmp_path: Path) -> None:
    poller, store = poller_for(farm, tmp_path / "m.db", readback=0)
    await poller.start()
    try:
        await wait_until(lambda: bool(poller.results), what="a poll")
    finally:
        await poller.stop()
        await poller.acquisition.stop()
    meter_id = next(s.meter_id for s in farm.specs if s.model is Model.DLT645)
    assert not store.registers([meter_id], *NOVEMBER)


async def test_month_starts_refused_at_the_store_are_read_back_again(
    farm: MeterFarm, tmp_path: Path
) -> None:
    """A poll whose write is refused (a lapsed token) loses the freezes it read back; the
    meter must not count as settled, so the next poll reads them back again."""
    poller, store = poller_for(farm, tmp_path / "m.db", readback=62)
    spec = next(s for s in farm.specs if s.model is Model.DLT645)
    gateway = str(spec.gateway)
    polled = [p for p in poller.catalog.active() if p.gateway == gateway]
    await poller.rebalance(reload=True)
    line = poller._lines[gateway]
    line.lease = dataclasses.replace(line.lease, token=line.lease.token - 1)  # fenced off
    end = poller.boundary_after(farm.clock.now()) - INTERVAL
    try:
        assert (await poller.poll_line(gateway, polled, end)).stale
        assert not store.registers([spec.meter_id], *NOVEMBER)
        await poller.rebalance()  # the line again, under its current token
        assert not (await poller.poll_line(gateway, polled, end)).stale
    finally:
        await poller.stop()
        await poller.acquisition.stop()
    assert month_start_stored(store, spec.meter_id, farm.clock.now(), ZONE)
