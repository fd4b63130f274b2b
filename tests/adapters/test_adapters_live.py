"""The adapters against the simulated farm over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta

import pytest
from meter_support import FAST, FarmFactory, control, first

from powerbus.adapters.dlt645 import DI
from powerbus.adapters.meters import (
    Acquisition,
    DeviceRejected,
    FrameError,
    GatewayUnreachable,
    MeterReading,
    MeterTimeout,
    Model,
    Quantity,
    ReadScope,
    exchange_seconds,
)
from powerbus.adapters.meters.sim.dlt645_meter import PROFILE_DAYS


async def test_modbus_reads_match_the_meters(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=10, gateways=1)
    for model in (Model.SDM630, Model.SDM120):
        spec = first(farm, model)
        before = (await control(farm, op="registers", meter=spec.meter_id))["forward"][0]
        reading = await acquisition.read(spec, scope=ReadScope.FULL)
        after = (await control(farm, op="registers", meter=spec.meter_id))["forward"][0]
        energy = reading.value(Quantity.ENERGY_FORWARD)
        assert energy is not None and before - 0.01 <= energy <= after + 0.01
        assert reading.value(Quantity.FREQUENCY) == pytest.approx(50.0)
        phases = 3 if model is Model.SDM630 else 1
        volts = [r for r in reading.readings if r.quantity is Quantity.VOLTAGE]
        assert len(volts) == phases and all(200 < v.value < 250 for v in volts)


async def test_pulse_channel_is_pulses_over_the_constant(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=10, gateways=1)
    spec = first(farm, Model.PULSE8)
    reading = await acquisition.read(spec)
    pulses = reading.value(Quantity.PULSES)
    assert pulses is not None and spec.pulse_constant
    assert reading.value(Quantity.ENERGY_FORWARD) == pulses / spec.pulse_constant
    expected = (await control(farm, op="registers", meter=spec.meter_id))["forward"][0]
    assert pulses / spec.pulse_constant == pytest.approx(expected, abs=0.5)


async def test_dlt645_read_and_clock(farm_factory: FarmFactory, acquisition: Acquisition) -> None:
    farm = await farm_factory(meters=4, gateways=2)
    spec = first(farm, Model.DLT645)
    reading = await acquisition.read(spec, scope=ReadScope.FULL)
    rates = [reading.value(Quantity.ENERGY_FORWARD, tou=t) for t in range(5)]
    assert all(r is not None for r in rates)
    assert rates[0] == pytest.approx(sum(r for r in rates[1:] if r is not None), abs=0.05)
    now = datetime.fromisoformat((await control(farm, op="now"))["now"])
    assert reading.meter_time is not None
    local_now = now.replace(tzinfo=None) + timedelta(hours=8)
    assert abs((reading.meter_time - local_now).total_seconds()) < 5


async def test_each_fault_is_its_typed_error(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=20, gateways=2)
    modbus = [s for s in farm.specs if s.model is Model.SDM120][:3]
    dlt = [s for s in farm.specs if s.model is Model.DLT645][:3]
    expected = [MeterTimeout, DeviceRejected, FrameError]
    for specs in (modbus, dlt):
        for spec, fault in zip(specs, ("no-answer", "exception", "garbage"), strict=True):
            await control(farm, op="fault", meter=spec.meter_id, fault=fault)
        for spec, error in zip(specs, expected, strict=True):
            with pytest.raises(error) as caught:
                await acquisition.read(spec, scope=ReadScope.ENERGY)
            assert caught.value.meter == spec.meter_id
            assert caught.value.gateway == str(spec.gateway)
    for spec in modbus + dlt:
        await control(farm, op="clear", meter=spec.meter_id)
        assert isinstance(await acquisition.read(spec, scope=ReadScope.ENERGY), MeterReading)


async def test_a_garbage_meter_does_not_stop_its_line(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=16, gateways=2, faults="M00003=garbage;M00004=garbage")
    results = await acquisition.read_all(farm.specs)
    bad = {
        s.meter_id
        for s, r in zip(farm.specs, results, strict=True)
        if not isinstance(r, MeterReading)
    }
    assert bad == {"M00003", "M00004"}
    assert all(
        isinstance(r, FrameError)
        for s, r in zip(farm.specs, results, strict=True)
        if s.meter_id in bad
    )


async def test_register_faults_show_in_readings(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=16, gateways=2, speed=3600)
    frozen, reverse = first(farm, Model.SDM120), first(farm, Model.SDM630)
    reset, broken = first(farm, Model.DLT645), first(farm, Model.PULSE8)
    await control(farm, op="fault", meter=frozen.meter_id, fault="frozen")
    await control(farm, op="fault", meter=reverse.meter_id, fault="reverse")
    before_reset = (await control(farm, op="registers", meter=reset.meter_id))["forward"][0]
    await control(farm, op="fault", meter=reset.meter_id, fault="reset")
    await control(farm, op="fault", meter=broken.meter_id, fault="wire-break")
    first_reads = {s.meter_id: await acquisition.read(s) for s in (frozen, reverse, reset, broken)}
    await asyncio.sleep(1.0)  # an hour of simulated time
    later = {s.meter_id: await acquisition.read(s) for s in (frozen, reverse, reset, broken)}

    def energy(r: MeterReading, q: Quantity = Quantity.ENERGY_FORWARD) -> float:
        value = r.value(q)
        assert value is not None
        return value

    assert energy(later[frozen.meter_id]) == energy(first_reads[frozen.meter_id])
    rev = later[reverse.meter_id]
    assert energy(rev, Quantity.ENERGY_REVERSE) > energy(
        first_reads[reverse.meter_id], Quantity.ENERGY_REVERSE
    )
    assert (rev.value(Quantity.POWER) or 0) < 0
    assert energy(first_reads[reset.meter_id]) < before_reset / 10  # restarted from 0
    assert "wire_break" in later[broken.meter_id].alarms
    assert energy(later[broken.meter_id]) == energy(first_reads[broken.meter_id])


async def test_clock_jump_and_broadcast_time_sync(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=4, gateways=2)
    spec = first(farm, Model.DLT645)
    client = acquisition.dlt645(spec.gateway)
    await control(farm, op="fault", meter=spec.meter_id, fault="clock-jump", arg=-3600)
    now = datetime.fromisoformat((await control(farm, op="now"))["now"])
    local_now = now.replace(tzinfo=None) + timedelta(hours=8)
    skew = (await client.read_clock(spec.meter_id, spec.address)) - local_now
    assert abs(skew.total_seconds() + 3600) < 5
    await client.broadcast_time(local_now.replace(microsecond=0))
    skew = (await client.read_clock(spec.meter_id, spec.address)) - local_now
    assert abs(skew.total_seconds()) < 5


async def test_history_matches_what_the_simulator_recorded(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=4, gateways=2)
    spec = first(farm, Model.DLT645)
    client = acquisition.dlt645(spec.gateway)
    start = datetime(2026, 11, 26, 9, 0)  # six days back, meter local time
    records = await client.read_load_profile(spec.meter_id, spec.address, start=start, count=20)
    recorded = (
        await control(farm, op="profile", meter=spec.meter_id, start=start.isoformat(), count=20)
    )["records"]
    assert len(records) == 20 == len(recorded)
    for got, (at, forward, reverse) in zip(records, recorded, strict=True):
        assert got.stored_at == datetime.fromisoformat(at)
        assert got.forward == round(forward, 2) and got.reverse == round(reverse, 2)
    for day in (1, 7):
        freeze = await client.read_daily_freeze(spec.meter_id, spec.address, day)
        expected = await control(farm, op="freeze", meter=spec.meter_id, day=day)
        assert freeze.forward == tuple(round(v, 2) for v in expected["forward"])
        assert freeze.frozen_at.hour == 0
    too_old = datetime(2026, 11, 1)
    with pytest.raises(DeviceRejected):
        await client.read_load_profile(spec.meter_id, spec.address, start=too_old, count=1)
    assert PROFILE_DAYS >= 7


async def test_a_cut_line_times_out_then_recovers(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=4, gateways=2, speed=3600)
    spec = first(farm, Model.DLT645)
    await control(farm, op="cut", gateway=str(spec.gateway), seconds=3600)  # 1 s real
    with pytest.raises(MeterTimeout):
        await acquisition.read(spec, scope=ReadScope.ENERGY)
    await asyncio.sleep(1.0)
    assert isinstance(await acquisition.read(spec, scope=ReadScope.ENERGY), MeterReading)


async def test_unreachable_gateway(acquisition: Acquisition, farm_factory: FarmFactory) -> None:
    farm = await farm_factory(meters=2, gateways=2)
    spec = first(farm, Model.DLT645)
    await farm.gateways[1].stop()  # nothing listens on the line's port any more
    with pytest.raises(GatewayUnreachable) as caught:
        await acquisition.read(spec, scope=ReadScope.ENERGY)
    assert caught.value.retriable and caught.value.gateway == str(spec.gateway)


async def test_line_throughput_is_the_physical_limit(farm_factory: FarmFactory) -> None:
    farm = await farm_factory(meters=20, gateways=2, baud=9600)
    dlt = [s for s in farm.specs if s.model is Model.DLT645]
    sdm = [s for s in farm.specs if s.model is Model.SDM120]
    async with Acquisition(config=FAST) as acq:
        start = time.perf_counter()
        for spec in dlt:
            await acq.dlt645(spec.gateway).read_value(
                spec.meter_id, spec.address, DI.ENERGY_FORWARD
            )
        one_line = time.perf_counter() - start
        # DL/T 645: 4 FE + 16-byte request, 0-4 FE + 20-byte reply, at 11 bits a byte
        floor = sum(
            exchange_seconds(20, 20 + farm.meters[s.meter_id].seed % 5, baud=9600) for s in dlt
        )
        print(f"one line: {one_line:.3f}s for a wire time of {floor:.3f}s")
        assert floor <= one_line <= floor * 1.3 + 0.05
        start = time.perf_counter()
        await asyncio.gather(
            *(
                acq.dlt645(s.gateway).read_value(s.meter_id, s.address, DI.ENERGY_FORWARD)
                for s in dlt
            ),
            *(acq.read(s, scope=ReadScope.ENERGY) for s in sdm),
        )
        both = time.perf_counter() - start
    # lines run in parallel: both lines together take about as long as the busier one
    assert both < one_line * 1.3 + 0.05
    stats = (await control(farm, op="stats"))["lines"]
    assert all(line["busy_seconds"] > 0 for line in stats)


async def test_a_terminal_is_one_read_for_all_its_channels(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    farm = await farm_factory(meters=40, gateways=1)
    channels = [
        s
        for s in farm.specs
        if s.model is Model.PULSE8 and s.unit == first(farm, Model.PULSE8).unit
    ]
    assert len(channels) == 8
    before = (await control(farm, op="stats"))["lines"][0]["exchanges"]
    results = await acquisition.read_all(channels)
    after = (await control(farm, op="stats"))["lines"][0]["exchanges"]
    assert after - before == 1 and all(isinstance(r, MeterReading) for r in results)
    await control(farm, op="fault", meter=channels[3].meter_id, fault="no-answer")
    failed = await acquisition.read_all(channels)
    assert [getattr(r, "meter", None) for r in failed] == [c.meter_id for c in channels]
    assert all(isinstance(r, MeterTimeout) for r in failed)


async def test_a_day_long_cut_is_read_back_from_the_meters_records(
    farm_factory: FarmFactory, acquisition: Acquisition
) -> None:
    """Deliverable 5's southbound half: after a line was cut for 24 simulated hours, the
    DL/T 645 meters' own 15-minute records of the gap come back over real frames, value
    for value what the simulator recorded."""
    farm = await farm_factory(meters=4, gateways=2, speed=43200, baud=115200)
    spec = first(farm, Model.DLT645)
    cut_at = datetime.fromisoformat((await control(farm, op="now"))["now"])
    await control(farm, op="cut", gateway=str(spec.gateway), seconds=86400)  # 2 s real
    with pytest.raises(MeterTimeout):
        await acquisition.read(spec, scope=ReadScope.ENERGY)
    await asyncio.sleep(2.2)
    assert isinstance(await acquisition.read(spec, scope=ReadScope.ENERGY), MeterReading)
    start = (cut_at + timedelta(hours=8)).replace(tzinfo=None)  # meter local time
    client = acquisition.dlt645(spec.gateway)
    records = await client.read_load_profile(spec.meter_id, spec.address, start=start, count=96)
    recorded = await control(
        farm, op="profile", meter=spec.meter_id, start=start.isoformat(), count=96
    )
    assert len(records) == 96 == len(recorded["records"])
    for got, (at, forward, reverse) in zip(records, recorded["records"], strict=True):
        assert got.stored_at == datetime.fromisoformat(at)
        assert (got.forward, got.reverse) == (round(forward, 2), round(reverse, 2))
    steps = [b.forward - a.forward for a, b in itertools.pairwise(records)]
    assert all(step >= 0 for step in steps) and sum(steps) > 0
