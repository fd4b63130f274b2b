"""Every VEE rule on hand-made series, with the edges that decide it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from metering_helpers import DAY, T0, UTC, Q, end, meter, reads, registers, varied

from powerbus.nodes.metering.errors import InvalidReading
from powerbus.nodes.metering.vee import (
    EstimationMethod,
    History,
    IntervalRead,
    QualityCode,
    RegisterRead,
    VeeAction,
    VeeConfig,
    VeeRule,
    run_vee,
)

E, S, V, X = (
    QualityCode.ESTIMATED,
    QualityCode.SUBSTITUTED,
    QualityCode.VALID,
    QualityCode.SUSPECT,
)


def history(wh: int = 100, days: int = 7) -> History:
    past = [(T0 - DAY * days + Q * (i + 1), wh) for i in range(96 * days)]
    return History.from_intervals(past, interval=Q, zone="Asia/Shanghai")


def rules_of(outcome: object) -> list[tuple[VeeRule, VeeAction]]:
    return [(f.rule, f.action) for f in outcome.findings]  # type: ignore[attr-defined]


# -- placement: gap, duplicate, interval size -------------------------------------------


def test_all_good_values_are_valid_and_counted():
    out = run_vee(meter(), T0, end(4), intervals=reads([1, 2, 3, 4]))
    assert [v.wh for v in out.intervals] == [1, 2, 3, 4]
    assert {v.quality for v in out.intervals} == {V}
    assert (out.accepted, out.estimated, out.rejected) == (4, 0, 0)
    assert out.findings == () and out.complete and out.total_wh == 10


def test_short_gap_is_interpolated_linearly_and_exactly():
    out = run_vee(meter(), T0, end(5), intervals=reads([100, None, None, None, 200]))
    assert [v.wh for v in out.intervals] == [100, 125, 150, 175, 200]
    gap = out.intervals[1]
    assert (gap.quality, gap.rule, gap.method, gap.raw_wh) == (
        E,
        VeeRule.GAP,
        EstimationMethod.LINEAR_INTERPOLATION,
        None,
    )
    (finding,) = out.findings
    assert (finding.rule, finding.action, finding.count, finding.time_stamp) == (
        VeeRule.GAP,
        VeeAction.ESTIMATED,
        3,
        end(2),
    )


def test_interpolation_rounds_half_up_in_integers():
    out = run_vee(meter(), T0, end(4), intervals=reads([0, None, None, 1]))
    assert [v.wh for v in out.intervals] == [0, 0, 1, 1]  # 1/3 → 0, 2/3 → 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [([None, None, 7, 9], [7, 7, 7, 9]), ([7, 9, None, None], [7, 9, 9, 9])],
    ids=["leading", "trailing"],
)
def test_gaps_at_the_edges_get_a_flat_load(values, expected):
    out = run_vee(meter(), T0, end(4), intervals=reads(values))
    assert [v.wh for v in out.intervals] == expected
    assert EstimationMethod.FLAT_LOAD in {v.method for v in out.intervals}


def test_long_gap_uses_the_historical_average():
    values = [50] + [None] * 10 + [60]
    out = run_vee(meter(), T0, end(12), intervals=reads(values), history=history(80))
    assert [v.wh for v in out.intervals[1:11]] == [80] * 10
    assert out.intervals[1].method is EstimationMethod.HISTORICAL_AVERAGE


def test_long_gap_without_history_is_left_and_flagged_not_invented():
    values = [50] + [None] * 9 + [60]
    out = run_vee(meter(), T0, end(11), intervals=reads(values))
    assert all(v.wh is None and v.quality is X for v in out.intervals[1:10])
    assert (VeeRule.GAP, VeeAction.FLAGGED) in rules_of(out)
    assert not out.complete and out.total_wh == 110


def test_gap_exactly_at_the_interpolation_limit_is_interpolated():
    values = [0] + [None] * 8 + [90]
    out = run_vee(meter(), T0, end(10), intervals=reads(values))
    assert [v.wh for v in out.intervals] == list(range(0, 100, 10))


def test_nothing_read_at_all_is_one_unfilled_gap():
    out = run_vee(meter(), T0, end(4))
    assert not out.complete and out.intervals_received == 0
    assert rules_of(out) == [(VeeRule.GAP, VeeAction.FLAGGED)]


def test_identical_repeat_is_one_value_a_different_repeat_is_a_duplicate():
    same = run_vee(meter(), T0, end(1), intervals=reads([5]) + reads([5]))
    assert same.findings == () and same.rejected == 0
    diff = run_vee(meter(), T0, end(1), intervals=reads([5]) + reads([6]))
    (v,) = diff.intervals
    assert (v.wh, v.quality, v.rule) == (5, X, VeeRule.DUPLICATE)
    assert rules_of(diff) == [(VeeRule.DUPLICATE, VeeAction.REJECTED)]
    assert diff.rejected == 1


def test_wrong_interval_length_and_off_grid_ends_are_rejected():
    bad = [
        IntervalRead(end(1), 10, length=timedelta(minutes=30)),
        IntervalRead(end(2) + timedelta(minutes=1), 11),
        IntervalRead(end(3), 12, length=Q),
    ]
    out = run_vee(meter(), T0, end(3), intervals=bad)
    assert rules_of(out)[:2] == [(VeeRule.INTERVAL_SIZE, VeeAction.REJECTED)] * 2
    assert out.rejected == 2 and out.intervals[2].quality is V
    assert [v.wh for v in out.intervals] == [12, 12, 12]  # flat from the one good value


# -- values: plausibility, negative consumption -----------------------------------------


def test_plausibility_limit_is_inclusive():
    m = meter(max_demand_w=4000)  # 1000 Wh per 15 min
    out = run_vee(m, T0, end(3), intervals=reads([1000, 1001, 1000]))
    assert [v.quality for v in out.intervals] == [V, E, V]
    assert out.intervals[1].raw_wh == 1001 and out.intervals[1].wh == 1000
    assert out.intervals[1].rule is VeeRule.PLAUSIBILITY


def test_negative_consumption_rejected_unless_net_metered():
    out = run_vee(meter(), T0, end(3), intervals=reads([10, -5, 30]))
    assert (out.intervals[1].wh, out.intervals[1].rule) == (20, VeeRule.NEGATIVE_CONSUMPTION)
    net = run_vee(meter(net_metered=True), T0, end(3), intervals=reads([10, -5, 30]))
    assert net.intervals[1].wh == -5 and net.intervals[1].quality is V


# -- registers: rollover, reset, pulses -------------------------------------------------


def test_intervals_from_registers_are_the_deltas():
    out = run_vee(meter(), T0, end(3), registers=registers([1000, 1100, 1250, 1300]))
    assert [v.wh for v in out.intervals] == [100, 150, 50]
    assert out.intervals_received == 3


def test_missing_register_reads_spread_the_known_delta_exactly():
    out = run_vee(meter(), T0, end(4), registers=registers([1000, None, None, 1301, 1400]))
    assert [v.wh for v in out.intervals] == [101, 100, 100, 99]
    assert [v.quality for v in out.intervals] == [E, E, E, V]


def test_rollover_at_a_possible_rate_is_substituted():
    m = meter(rollover_wh=999_999_990, max_demand_w=10_000)  # 999999.99 kWh register
    out = run_vee(m, T0, end(2), registers=registers([999_999_000, 999_999_900, 500]))
    v = out.intervals[1]
    assert (v.wh, v.quality, v.rule, v.method) == (
        590,
        S,
        VeeRule.ROLLOVER,
        EstimationMethod.ROLLOVER_CORRECTION,
    )
    assert v.raw_wh == 500 - 999_999_900
    assert (VeeRule.ROLLOVER, VeeAction.SUBSTITUTED) in rules_of(out)


def test_a_wrap_faster_than_max_demand_is_a_reset_not_guessed():
    m = meter(rollover_wh=1_000_000, max_demand_w=1000)  # 250 Wh per interval at most
    out = run_vee(m, T0, end(3), registers=registers([999_000, 999_100, 300, 400]))
    reset = out.intervals[1]
    assert (reset.wh, reset.quality, reset.rule) == (None, X, VeeRule.METER_RESET)
    assert [out.intervals[0].wh, out.intervals[2].wh] == [100, 100]
    assert (VeeRule.METER_RESET, VeeAction.FLAGGED) in rules_of(out)


def test_without_a_rollover_point_a_drop_is_a_reset():
    out = run_vee(meter(), T0, end(2), registers=registers([5000, 5100, 40]))
    assert out.intervals[1].rule is VeeRule.METER_RESET and out.intervals[1].wh is None


def test_without_max_demand_only_the_shape_of_a_wrap_counts():
    m = meter(rollover_wh=1_000_000)
    wrap = run_vee(m, T0, end(1), registers=registers([950_000, 20_000]))
    assert wrap.intervals[0].rule is VeeRule.ROLLOVER and wrap.intervals[0].wh == 70_000
    mid = run_vee(m, T0, end(1), registers=registers([500_000, 20_000]))
    assert mid.intervals[0].rule is VeeRule.METER_RESET


def test_a_reset_inside_missing_reads_locks_the_whole_span():
    out = run_vee(meter(), T0, end(5), registers=registers([100, 200, None, None, 30, 80]))
    assert [v.wh for v in out.intervals] == [100, None, None, None, 50]
    assert all(v.rule is VeeRule.METER_RESET for v in out.intervals[1:4])
    assert out.estimated == 0


def test_pulse_counter_wrap_at_2_pow_32_is_a_rollover():
    m = meter(pulses_per_kwh=1000)
    out = run_vee(
        m, T0, end(1), registers=[RegisterRead(T0, 2**32 - 100), RegisterRead(end(1), 50)]
    )
    v = out.intervals[0]
    assert (v.wh, v.rule, v.quality) == (150, VeeRule.ROLLOVER, S)


def test_pulse_overflow_is_rejected_and_estimated():
    m = meter(pulses_per_kwh=1000)
    limit = 16 * 900  # pulses an S0 output can make in 15 min at 16 Hz
    counts = [0, 100, 200 + limit, 300 + limit]
    out = run_vee(
        m, T0, end(3), registers=[RegisterRead(T0 + k * Q, c) for k, c in enumerate(counts)]
    )
    assert out.intervals[1].rule is VeeRule.DATA_OVERFLOW
    assert out.intervals[1].quality is E and out.intervals[1].wh == 100
    assert (VeeRule.DATA_OVERFLOW, VeeAction.REJECTED) in rules_of(out)


def test_pulses_become_wh_without_drift():
    m = meter(pulses_per_kwh=3200)  # 0.3125 Wh a pulse
    counts = [k * 7 for k in range(97)]  # 2.1875 Wh an interval
    regs = [RegisterRead(T0 + k * Q, c) for k, c in enumerate(counts)]
    out = run_vee(m, T0, T0 + DAY, registers=regs)
    assert out.total_wh == round(96 * 7 * 1000 / 3200) == 210
    assert {v.wh for v in out.intervals} <= {2, 3}


# -- flags: frozen, zero, spike, high/low, sum, time ------------------------------------


def test_frozen_needs_the_configured_run_of_equal_non_zero_values():
    out = run_vee(meter(), T0, end(6), intervals=reads([5, 40, 40, 40, 6, 7]))
    assert [v.quality for v in out.intervals] == [V, X, X, X, V, V]
    assert out.findings[0].count == 3 and out.intervals[1].rule is VeeRule.FROZEN
    two = run_vee(meter(), T0, end(4), intervals=reads([5, 40, 40, 6]))
    assert two.findings == ()
    zeros = run_vee(meter(), T0, end(4), intervals=reads([0, 0, 0, 0]))
    assert zeros.findings == ()


def test_zero_consumption_against_history():
    values = varied(10, 99) + [0] * 8 + varied(78, 99)
    flagged = run_vee(meter(), T0, T0 + DAY, intervals=reads(values), history=history(100))
    assert [v.rule for v in flagged.intervals[10:18]] == [VeeRule.ZERO_CONSUMPTION] * 8
    short = varied(10, 99) + [0] * 7 + varied(79, 99)
    assert (
        run_vee(meter(), T0, T0 + DAY, intervals=reads(short), history=history(100)).findings == ()
    )
    quiet = run_vee(meter(), T0, T0 + DAY, intervals=reads(values), history=history(10))
    assert VeeRule.ZERO_CONSUMPTION not in {f.rule for f in quiet.findings}  # expects 80 Wh


def test_spike_compares_the_highest_with_the_third_highest():
    base = varied(96, 90)  # 90..92
    base[10], base[20], base[30] = 301, 150, 100  # 301 over 100 is 201 % > 200 %
    out = run_vee(meter(), T0, T0 + DAY, intervals=reads(base))
    assert out.intervals[10].rule is VeeRule.SPIKE and out.intervals[10].quality is X
    assert "201%" in out.intervals[10].detail
    base[10] = 300  # exactly 200 %: within tolerance
    assert run_vee(meter(), T0, T0 + DAY, intervals=reads(base)).findings == ()


def test_spike_ignores_tiny_loads_and_needs_three_values():
    base = [0] * 96
    base[5] = 99  # over a third-highest of 0, but under spike_min_wh
    assert run_vee(meter(), T0, T0 + DAY, intervals=reads(base)).findings == ()
    out = run_vee(meter(), T0, end(2), intervals=reads([1000, 1]))
    assert out.findings == ()


def test_spike_is_per_local_day():
    two_days = varied(192, 100)
    two_days[100] = 1000
    out = run_vee(meter(), T0, T0 + 2 * DAY, intervals=reads(two_days))
    assert [f.time_stamp for f in out.findings] == [end(101)]


def test_high_and_low_days_against_average_daily_usage():
    adu = history(100)  # 9600 Wh a day
    high = run_vee(meter(), T0, T0 + DAY, intervals=reads(varied(96, 200)), history=adu)
    assert high.intervals[0].rule is VeeRule.HIGH_LOW and "high" in high.intervals[0].detail
    edge = run_vee(meter(), T0, T0 + DAY, intervals=reads(varied(96, 199)), history=adu)
    assert VeeRule.HIGH_LOW not in {f.rule for f in edge.findings}
    low = run_vee(meter(), T0, T0 + DAY, intervals=reads(varied(96, 18)), history=adu)
    assert low.intervals[0].rule is VeeRule.HIGH_LOW and "low" in low.intervals[0].detail
    young = run_vee(meter(), T0, T0 + DAY, intervals=reads(varied(96, 18)), history=history(100, 3))
    assert VeeRule.HIGH_LOW not in {f.rule for f in young.findings}


def test_sum_check_against_the_register_delta():
    regs = [RegisterRead(T0, 10_000), RegisterRead(end(4), 10_400)]
    ok = run_vee(meter(), T0, end(4), intervals=reads([100, 90, 100, 120]), registers=regs)
    assert ok.findings == ()  # 10 Wh off: one register step
    bad = run_vee(meter(), T0, end(4), intervals=reads([100, 90, 100, 121]), registers=regs)
    assert {v.rule for v in bad.intervals} == {VeeRule.SUM_CHECK}
    assert "411 Wh" in bad.findings[0].detail


def test_sum_check_uses_the_rollover_corrected_delta():
    m = meter(rollover_wh=1_000_000)
    regs = [RegisterRead(T0, 999_900), RegisterRead(end(2), 100)]
    out = run_vee(m, T0, end(2), intervals=reads([100, 100]), registers=regs)
    assert out.findings == ()


def test_time_tolerance_on_a_batch_and_on_register_reads():
    cfg = VeeConfig(time_tolerance=timedelta(minutes=2))
    ok = run_vee(
        meter(), T0, end(2), intervals=reads([1, 2]), clock_offset=timedelta(minutes=2), config=cfg
    )
    assert ok.findings == ()
    off = run_vee(
        meter(), T0, end(2), intervals=reads([1, 2]), clock_offset=-timedelta(minutes=3), config=cfg
    )
    assert {v.rule for v in off.intervals} == {VeeRule.TIME_TOLERANCE}
    regs = [
        RegisterRead(T0, 0),
        RegisterRead(end(1), 10, meter_time=end(1) + timedelta(hours=1)),
        RegisterRead(end(2), 20),
    ]
    drift = run_vee(meter(), T0, end(2), registers=regs, config=cfg)
    assert [v.rule for v in drift.intervals] == [VeeRule.TIME_TOLERANCE] * 2
    assert [v.wh for v in drift.intervals] == [10, 10]


def test_a_rejected_value_never_makes_a_spike():
    m = meter(max_demand_w=4000)
    values = varied(96, 100)
    values[3] = 50_000
    out = run_vee(m, T0, T0 + DAY, intervals=reads(values))
    assert {f.rule for f in out.findings} == {VeeRule.PLAUSIBILITY, VeeRule.GAP}


def test_bad_input_names_the_field():
    with pytest.raises(InvalidReading, match="period"):
        run_vee(meter(), end(2), end(1))
    with pytest.raises(InvalidReading, match=r"meter\.interval"):
        meter(interval=timedelta(minutes=7))
    with pytest.raises(InvalidReading, match=r"period\.start"):
        run_vee(meter(), T0.replace(tzinfo=None), end(1))


def test_local_days_follow_the_zone_including_a_dst_day():
    from zoneinfo import ZoneInfo

    from powerbus.nodes.metering.vee._grid import Grid, Work

    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # local midnight, the day clocks go on
    work = Work(Grid(start, start + 2 * DAY, Q))
    assert [len(day) for day in work.local_days(berlin)] == [92, 96, 4]
    shanghai = Work(Grid(T0, T0 + DAY, Q)).local_days(ZoneInfo("Asia/Shanghai"))
    assert [len(day) for day in shanghai] == [96]


def test_an_implausible_register_step_is_rejected_even_spread_over_missing_reads():
    m = meter(max_demand_w=4000)  # 1000 Wh per interval at most
    out = run_vee(m, T0, end(4), registers=registers([0, 100, None, 5_000, 5_100]))
    assert [v.rule for v in out.intervals] == [
        VeeRule.UNSPECIFIED,
        VeeRule.PLAUSIBILITY,
        VeeRule.PLAUSIBILITY,
        VeeRule.UNSPECIFIED,
    ]
    assert [v.wh for v in out.intervals] == [100, 100, 100, 100]  # interpolated, not invented
    assert out.intervals[1].quality is E and out.rejected == 1
