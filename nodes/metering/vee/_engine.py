"""The VEE run over one meter's period: place what was read, run the rules, estimate,
count. Pure: no clock, no I/O; the same input gives the same outcome.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
>>> meter = MeterSpec(meter_id="M1", max_demand_w=10_000)
>>> reads = [IntervalRead(t0 + timedelta(minutes=15 * k), wh) for k, wh in
...          [(1, 400), (2, 420), (4, 480), (5, 99_999)]]
>>> out = run_vee(meter, t0, t0 + timedelta(hours=2), intervals=reads)
>>> [(v.wh, v.quality.value, v.rule.value) for v in out.intervals[:5]]
... # doctest: +NORMALIZE_WHITESPACE
[(400, 'valid', 'unspecified'), (420, 'valid', 'unspecified'),
 (450, 'estimated', 'gap'), (480, 'valid', 'unspecified'),
 (480, 'estimated', 'plausibility')]
>>> out.accepted, out.estimated, out.rejected, out.intervals_expected, out.intervals_received
(3, 5, 1, 8, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from powerbus.nodes.metering.vee._checks import (
    check_clock,
    check_frozen,
    check_high_low,
    check_spikes,
    check_sum,
    check_values,
    check_zero_runs,
    place_intervals,
)
from powerbus.nodes.metering.vee._config import VeeConfig
from powerbus.nodes.metering.vee._enums import QualityCode
from powerbus.nodes.metering.vee._estimate import estimate_gaps
from powerbus.nodes.metering.vee._grid import Grid, Work
from powerbus.nodes.metering.vee._history import History
from powerbus.nodes.metering.vee._model import IntervalRead, MeterSpec, RegisterRead, VeeOutcome
from powerbus.nodes.metering.vee._registers import derive_intervals, register_steps

__all__ = ["DEFAULT_CONFIG", "run_vee"]

DEFAULT_CONFIG = VeeConfig()


def run_vee(
    meter: MeterSpec,
    start: datetime,
    end: datetime,
    *,
    intervals: Sequence[IntervalRead] = (),
    registers: Sequence[RegisterRead] = (),
    history: History | None = None,
    clock_offset: timedelta | None = None,
    config: VeeConfig = DEFAULT_CONFIG,
) -> VeeOutcome:
    """Validate, edit and estimate one meter's intervals over ``[start, end)``.

    With ``intervals`` (load-profile or submitted DELTA values), ``registers`` serve the
    SUM_CHECK; without them, the intervals are worked out from the register reads
    (rollover, reset, pulse wrap and overflow handled there). ``history`` feeds
    HIGH_LOW, ZERO_CONSUMPTION and the estimation of long gaps; ``clock_offset`` (meter
    clock minus node clock when read) the TIME_TOLERANCE check.
    """
    work = Work(Grid(start, end, meter.interval))
    steps = []
    if intervals:
        place_intervals(work, meter, intervals)
        if registers:
            steps = register_steps(work, meter, registers, config)
    elif registers:
        derive_intervals(work, meter, registers, config)
    # Rejecting rules first, so a rejected value never makes a spike or a frozen run.
    check_values(work, meter)
    check_clock(work, clock_offset, config)
    check_frozen(work, config)
    check_zero_runs(work, history, config)
    check_spikes(work, config)
    check_high_low(work, history, config)
    check_sum(work, steps, config)
    estimate_gaps(work, history, config)
    return _outcome(meter, work)


def _outcome(meter: MeterSpec, work: Work) -> VeeOutcome:
    values = tuple(slot.freeze() for slot in work.slots)
    accepted = estimated = 0
    for v in values:
        if v.wh is None:
            continue
        if v.quality in (QualityCode.VALID, QualityCode.SUSPECT):
            accepted += 1
        else:
            estimated += 1
    return VeeOutcome(
        meter_id=meter.meter_id,
        intervals=values,
        findings=tuple(work.findings),
        accepted=accepted,
        estimated=estimated,
        rejected=work.rejected,
        intervals_expected=len(values),
        intervals_received=sum(1 for s in work.slots if s.raw is not None),
    )
