"""Register reads into interval energy: rollover (a wrap the meter can physically have
made, worked out and SUBSTITUTED) against meter reset (not explained by a wrap: flagged,
never guessed), pulse-counter wrap at 2^32 and pulse overflow (more pulses than an S0
output can make), and the register delta a SUM_CHECK compares intervals with.

A pulse channel's counts become Wh by rounding the *cumulative* count, so per-interval
values telescope to the rounded total and sums of intervals stay exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from powerbus.nodes.metering.vee._config import VeeConfig
from powerbus.nodes.metering.vee._enums import EstimationMethod, QualityCode, VeeAction, VeeRule
from powerbus.nodes.metering.vee._grid import Work
from powerbus.nodes.metering.vee._model import MeterSpec, RegisterRead

__all__ = ["Step", "derive_intervals", "register_steps"]


@dataclass(frozen=True, slots=True)
class Step:
    """Energy between two register reads at boundaries ``first`` < ``last``.

    ``wh`` is None across a meter reset or a pulse overflow: the energy is unknown.
    """

    first: int
    last: int
    wh: int | None
    raw_wh: int
    rule: VeeRule = VeeRule.UNSPECIFIED
    detail: str = ""


def register_steps(
    work: Work, meter: MeterSpec, reads: Sequence[RegisterRead], config: VeeConfig
) -> list[Step]:
    """Register reads snapped to boundaries, duplicates and clock errors found, and the
    energy of each step between consecutive reads."""
    points = _points(work, reads, config)
    steps: list[Step] = []
    cumulative = 0  # unwrapped register since the first read, in Wh or pulses
    for (j0, v0), (j1, v1) in itertools.pairwise(points):
        step, added = _step(meter, config, j0, j1, v0, v1, work.grid.seconds)
        if meter.is_pulse_channel and added is not None:
            step = _as_wh(step, meter.pulses_per_kwh, cumulative, added)
        cumulative += added or 0
        steps.append(step)
    return steps


def derive_intervals(
    work: Work, meter: MeterSpec, reads: Sequence[RegisterRead], config: VeeConfig
) -> None:
    """Fill the slots from register deltas (a meter read as registers only)."""
    for step in register_steps(work, meter, reads, config):
        _fill(work, step)


def _points(work: Work, reads: Sequence[RegisterRead], config: VeeConfig) -> list[tuple[int, int]]:
    by_boundary: dict[int, int] = {}
    for read in sorted(reads, key=lambda r: r.at):
        j = work.grid.nearest_boundary(read.at)
        if j is None:
            continue
        if read.meter_time is not None:
            _check_clock(work, j, read, config)
        if j in by_boundary:
            if by_boundary[j] != read.value:
                work.rejected += 1
                detail = f"register {read.value} at {read.at.isoformat()}, kept {by_boundary[j]}"
                work.find(VeeRule.DUPLICATE, VeeAction.REJECTED, max(j - 1, 0), detail=detail)
            continue
        by_boundary[j] = read.value
    return sorted(by_boundary.items())


def _check_clock(work: Work, j: int, read: RegisterRead, config: VeeConfig) -> None:
    assert read.meter_time is not None
    offset = read.meter_time - read.at
    if abs(offset) <= config.time_tolerance:
        return
    seconds = offset.total_seconds()
    detail = f"meter clock off by {seconds:+.0f} s, tolerance {config.time_tolerance}"
    touched = [s for s in (j - 1, j) if 0 <= s < len(work.slots)]
    for s in touched:
        work.slots[s].flag(VeeRule.TIME_TOLERANCE, detail)
    work.find(VeeRule.TIME_TOLERANCE, VeeAction.FLAGGED, touched[0], detail=detail)


def _step(
    meter: MeterSpec, config: VeeConfig, j0: int, j1: int, v0: int, v1: int, seconds: int
) -> tuple[Step, int | None]:
    """The step and how far the unwrapped register moved (None when unknown)."""
    delta = v1 - v0
    span = (j1 - j0) * seconds
    modulus = meter.counter_modulus if meter.is_pulse_channel else meter.rollover_wh
    if delta < 0:
        wrapped = modulus - v0 + v1 if modulus and 0 <= v1 < modulus and v0 < modulus else None
        if wrapped is not None and _possible(meter, config, v0, v1, wrapped, span, modulus):
            detail = f"register {v0} → {v1} wrapped at {modulus}: {wrapped}"
            return Step(j0, j1, wrapped, delta, VeeRule.ROLLOVER, detail), wrapped
        why = "no rollover point" if not modulus else f"a wrap at {modulus} is not possible"
        detail = f"register went down {v0} → {v1}; {why}: reset or replacement"
        return Step(j0, j1, None, delta, VeeRule.METER_RESET, detail), None
    if meter.is_pulse_channel and delta > config.max_pulse_hz * span:
        detail = f"{delta} pulses in {span} s, more than {config.max_pulse_hz} Hz can make"
        return Step(j0, j1, None, delta, VeeRule.DATA_OVERFLOW, detail), None
    if (
        not meter.is_pulse_channel
        and meter.max_demand_w
        and delta * 3600 > meter.max_demand_w * span
    ):
        # Checked on the whole step, so a delta spread over missing reads cannot hide.
        detail = f"register moved {delta} Wh in {span} s, over {meter.max_demand_w} W"
        return Step(j0, j1, None, delta, VeeRule.PLAUSIBILITY, detail), delta
    return Step(j0, j1, delta, delta), delta


def _possible(
    meter: MeterSpec, config: VeeConfig, v0: int, v1: int, wrapped: int, span: int, modulus: int
) -> bool:
    """Whether a wrap at ``modulus`` is something the meter could have done in ``span`` s."""
    if meter.is_pulse_channel:
        if wrapped > config.max_pulse_hz * span:
            return False
        wh = wrapped * 1000 // meter.pulses_per_kwh
    else:
        wh = wrapped
    if meter.max_demand_w:
        return wh * 3600 <= meter.max_demand_w * span
    # No demand bound: accept only the shape of a wrap, top of the register to its bottom.
    window = modulus * config.rollover_window_percent // 100
    return v0 >= modulus - window and v1 <= window


def _as_wh(step: Step, pulses_per_kwh: int, cumulative: int, added: int) -> Step:
    def wh(pulses: int) -> int:
        return (pulses * 2000 + pulses_per_kwh) // (2 * pulses_per_kwh)

    energy = wh(cumulative + added) - wh(cumulative)
    raw = (step.raw_wh * 1000) // pulses_per_kwh
    return Step(step.first, step.last, energy, raw, step.rule, step.detail)


def _fill(work: Work, step: Step) -> None:
    slots = work.slots[step.first : step.last]
    if step.wh is None:
        _unknown(work, step)
        return
    share, extra = divmod(step.wh, len(slots))
    for i, slot in enumerate(slots):
        slot.wh = share + (1 if i < extra else 0)
        slot.raw = slot.wh if len(slots) == 1 and step.rule is VeeRule.UNSPECIFIED else step.raw_wh
    if step.rule is VeeRule.ROLLOVER:
        for slot in slots:
            slot.quality, slot.rule = QualityCode.SUBSTITUTED, VeeRule.ROLLOVER
            slot.method, slot.detail = EstimationMethod.ROLLOVER_CORRECTION, step.detail
        work.find(
            VeeRule.ROLLOVER,
            VeeAction.SUBSTITUTED,
            step.first,
            count=len(slots),
            detail=step.detail,
            method=EstimationMethod.ROLLOVER_CORRECTION,
        )
    if len(slots) > 1:
        _spread(work, step, len(slots))


def _spread(work: Work, step: Step, count: int) -> None:
    """Reads missing between two good ones: the register is interpolated linearly, which
    spreads the known delta evenly; the energy is measured, its shape estimated."""
    detail = f"{count} intervals between register reads share {step.wh} Wh"
    for slot in work.slots[step.first : step.last]:
        slot.raw = None
        if slot.quality is QualityCode.VALID:
            slot.quality, slot.rule = QualityCode.ESTIMATED, VeeRule.GAP
            slot.method, slot.detail = EstimationMethod.LINEAR_INTERPOLATION, detail
    work.find(
        VeeRule.GAP,
        VeeAction.ESTIMATED,
        step.first,
        count=count,
        detail=detail,
        method=EstimationMethod.LINEAR_INTERPOLATION,
    )


def _unknown(work: Work, step: Step) -> None:
    slots = work.slots[step.first : step.last]
    first = slots[0]
    first.raw = step.raw_wh
    if step.rule is VeeRule.METER_RESET:
        # Not guessed, and not to be estimated over: energy across a reset is unknown.
        for slot in slots:
            slot.wh, slot.locked = None, True
            slot.quality, slot.rule, slot.detail = QualityCode.SUSPECT, step.rule, step.detail
        work.find(step.rule, VeeAction.FLAGGED, step.first, count=len(slots), detail=step.detail)
        return
    for slot in slots:
        slot.reject(step.rule, step.detail)
    work.rejected += 1
    work.find(step.rule, VeeAction.REJECTED, step.first, count=len(slots), detail=step.detail)
