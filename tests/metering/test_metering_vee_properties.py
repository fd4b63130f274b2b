"""Properties of VEE over generated series (hypothesis)."""

from __future__ import annotations

import itertools

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from metering_helpers import T0, Q, end, meter, reads

from powerbus.nodes.metering.vee import QualityCode, RegisterRead, VeeRule, run_vee

FAST = settings(max_examples=150, deadline=None)
usage = st.lists(st.integers(0, 2_000), min_size=2, max_size=40)


def kept_reads(draw: st.DrawFn, count: int) -> list[int]:
    """Boundaries 0..count with the first and last always read, others maybe not."""
    inner = [k for k in range(1, count) if draw(st.booleans())]
    return [0, *inner, count]


@FAST
@given(st.data(), usage, st.integers(1, 10**7))
def test_estimation_never_invents_energy_across_a_reset(data, deltas, base):
    n = len(deltas)
    reset_at = data.draw(st.integers(1, n), label="reset at boundary")
    values, register = [base], base
    for k, delta in enumerate(deltas, start=1):
        if k == reset_at:  # the new meter starts somewhere below the old register
            register = data.draw(st.integers(0, register - 1), label="new register")
        else:
            register += delta
        values.append(register)
    kept = sorted({0, n, *data.draw(st.sets(st.integers(1, n - 1)), label="kept")})
    lo = max(j for j in kept if j < reset_at)
    hi = min(j for j in kept if j >= reset_at)
    # A reset hidden in a gap by more usage after it than the drop looks like usage.
    assume(values[hi] < values[lo])
    regs = [RegisterRead(T0 + j * Q, values[j]) for j in kept]
    out = run_vee(meter(), T0, end(n), registers=regs)
    for v in out.intervals[lo:hi]:
        assert v.wh is None and v.rule is VeeRule.METER_RESET
        assert v.quality is not QualityCode.ESTIMATED
    measured = sum(values[b] - values[a] for a, b in itertools.pairwise(kept) if a >= hi or b <= lo)
    assert out.total_wh == measured


@FAST
@given(st.data(), usage)
def test_intervals_sum_to_the_register_delta_across_a_rollover(data, deltas):
    modulus = 1_000_000
    n = len(deltas)
    start = data.draw(st.integers(modulus - 2_000 * n, modulus - 1), label="start")
    positions = [start]
    for d in deltas:
        positions.append(positions[-1] + d)
    kept = sorted({0, n, *data.draw(st.sets(st.integers(1, n - 1)), label="kept")})
    regs = [RegisterRead(T0 + j * Q, positions[j] % modulus) for j in kept]
    m = meter(rollover_wh=modulus, max_demand_w=2_000 * 4)  # 2000 Wh per 15 min at most
    out = run_vee(m, T0, end(n), registers=regs)
    assert out.complete
    assert out.total_wh == positions[-1] - positions[0] == sum(deltas)
    wrapped = positions[-1] >= modulus > positions[0]
    assert wrapped == any(v.rule is VeeRule.ROLLOVER for v in out.intervals)
    # The same intervals submitted beside the wrapped registers pass the sum check.
    checked = run_vee(m, T0, end(n), intervals=reads(deltas), registers=regs)
    assert VeeRule.SUM_CHECK not in {f.rule for f in checked.findings}


@FAST
@given(st.lists(st.one_of(st.none(), st.integers(0, 5_000)), min_size=1, max_size=60))
def test_estimates_stay_within_their_anchors_and_counts_add_up(values):
    out = run_vee(meter(), T0, end(len(values)), intervals=reads(values))
    given_values = [v for v in values if v is not None]
    for v in out.intervals:
        if v.quality is QualityCode.ESTIMATED and given_values:
            assert min(given_values) <= (v.wh or 0) <= max(given_values)
    assert out.accepted + out.estimated == sum(1 for v in out.intervals if v.wh is not None)
    assert out.intervals_received == len(given_values)
    assert out == run_vee(meter(), T0, end(len(values)), intervals=reads(values))
