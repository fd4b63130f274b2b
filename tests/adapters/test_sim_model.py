"""The simulated meters' physics: load shapes, TOU registers and register faults."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

from powerbus.adapters.meters.sim import CustomerClass, Fault, SimMeter, parse_faults
from powerbus.adapters.meters.sim.profile import day_table, rate_of_hour
from powerbus.bus.kernel.errors import InvalidArgument

WEDNESDAY = datetime(2026, 12, 2, tzinfo=timezone.utc).timestamp() - 8 * 3600  # local 00:00
HOUR = 3600.0


def meter(customer: CustomerClass = CustomerClass.RESIDENTIAL, **kw: float) -> SimMeter:
    options = {"mean_kw": 1.0, "initial_kwh": 1000.0, "seed": 11, "origin": WEDNESDAY - 70 * 86400}
    options.update(kw)
    return SimMeter(meter_id="M", customer=customer, **options)  # type: ignore[arg-type]


def hourly(m: SimMeter, day_start: float) -> list[float]:
    totals = [m.registers(day_start + h * HOUR)[0][0] for h in range(25)]
    return [b - a for a, b in itertools.pairwise(totals)]


def test_residential_peaks_in_the_evening_commercial_in_the_day() -> None:
    home = hourly(meter(CustomerClass.RESIDENTIAL), WEDNESDAY)
    shop = hourly(meter(CustomerClass.COMMERCIAL), WEDNESDAY)
    plant = hourly(meter(CustomerClass.INDUSTRIAL), WEDNESDAY)
    assert max(range(24), key=home.__getitem__) in range(18, 22)
    assert max(range(24), key=shop.__getitem__) in range(8, 18)
    assert min(plant) > 0.6 * max(plant)  # flat two-shift plant
    assert sum(plant[0:6]) / 6 < sum(plant[8:18]) / 10  # lighter night shift


def test_weekends_differ_from_weekdays() -> None:
    shop = meter(CustomerClass.COMMERCIAL)
    saturday = WEDNESDAY + 3 * 86400
    assert sum(hourly(shop, saturday)) < 0.7 * sum(hourly(shop, WEDNESDAY))


def test_rate_registers_follow_the_tou_periods_and_sum_to_the_total() -> None:
    m = meter(CustomerClass.INDUSTRIAL)
    for hour in (3, 8, 12, 19, 23):
        before = m.registers(WEDNESDAY + hour * HOUR)[0]
        after = m.registers(WEDNESDAY + hour * HOUR + 1800)[0]
        grew = [i for i in range(1, 5) if after[i] > before[i]]
        assert grew == [rate_of_hour(hour, summer=False, customer=CustomerClass.INDUSTRIAL)]
        assert after[0] == pytest.approx(sum(after[1:]))
    assert rate_of_hour(12, summer=True) == 1 and rate_of_hour(12, summer=False) == 2
    assert day_table(CustomerClass.RESIDENTIAL, weekend=False, summer=False).total == (
        pytest.approx(24.0)
    )


def test_a_households_meter_counts_peak_and_valley_only() -> None:
    """The residential 峰谷 program: rate 2 from 08:00 to 22:00, rate 4 otherwise, so a
    peak/valley tariff (meter_rate 2 and 4) finds nothing on rates 1 and 3."""
    home = meter(CustomerClass.RESIDENTIAL)
    for hour, rate in ((3, 4), (8, 2), (12, 2), (21, 2), (22, 4), (23, 4)):
        before = home.registers(WEDNESDAY + hour * HOUR)[0]
        after = home.registers(WEDNESDAY + hour * HOUR + 1800)[0]
        assert [i for i in range(1, 5) if after[i] > before[i]] == [rate], hour
    midnight, next_midnight = home.registers(WEDNESDAY)[0], home.registers(WEDNESDAY + 86400)[0]
    assert (next_midnight[1], next_midnight[3]) == (midnight[1], midnight[3])
    assert next_midnight[2] > midnight[2] and next_midnight[4] > midnight[4]


def test_registers_only_grow_without_faults() -> None:
    m = meter()
    values = [m.registers(WEDNESDAY + i * 977.0)[0][0] for i in range(300)]
    assert values == sorted(values)


def test_frozen_then_cleared() -> None:
    m = meter()
    m.inject(Fault.FROZEN, at=WEDNESDAY + HOUR)
    stuck = m.registers(WEDNESDAY + HOUR)
    assert m.registers(WEDNESDAY + 5 * HOUR) == stuck
    m.clear(at=WEDNESDAY + 6 * HOUR)
    assert m.registers(WEDNESDAY + 7 * HOUR)[0][0] > stuck[0][0]


def test_reset_restarts_from_zero() -> None:
    m = meter()
    m.inject(Fault.RESET, at=WEDNESDAY + HOUR)
    assert m.registers(WEDNESDAY + HOUR)[0][0] == 0.0
    assert 0 < m.registers(WEDNESDAY + 3 * HOUR)[0][0] < 10


def test_rollover_wraps_the_total_register() -> None:
    m = meter(mean_kw=5.0)
    m.inject(Fault.ROLLOVER, at=WEDNESDAY + 12 * HOUR)
    near = m.registers(WEDNESDAY + 12 * HOUR)[0][0]
    assert m.modulus - 10 < near < m.modulus
    assert m.registers(WEDNESDAY + 14 * HOUR)[0][0] < 20


def test_reverse_flow_moves_energy_to_the_reverse_register() -> None:
    m = meter()
    m.inject(Fault.REVERSE, at=WEDNESDAY + HOUR)
    forward, reverse = m.registers(WEDNESDAY + 4 * HOUR)
    assert forward[0] == pytest.approx(m.registers(WEDNESDAY + HOUR)[0][0])
    assert reverse[0] > 0 and m.power_kw(WEDNESDAY + 2 * HOUR) < 0


def test_clock_jump_and_fault_spec() -> None:
    m = meter()
    m.inject(Fault.CLOCK_JUMP, at=WEDNESDAY, arg=-600)
    assert m.clock(WEDNESDAY) == datetime(2026, 12, 1, 23, 50)
    with pytest.raises(InvalidArgument, match="unknown fault"):
        parse_faults("M1=melted")
    with pytest.raises(InvalidArgument):
        parse_faults("M1")
