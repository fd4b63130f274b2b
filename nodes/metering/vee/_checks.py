"""Validation rules on interval values: placement (INTERVAL_SIZE, DUPLICATE), rules that
reject a value (NEGATIVE_CONSUMPTION, PLAUSIBILITY), and rules that keep it but flag it
SUSPECT (FROZEN, ZERO_CONSUMPTION, SPIKE, HIGH_LOW, SUM_CHECK, TIME_TOLERANCE).

Each function takes the working grid and records its findings there; the order the
engine calls them in matters only in that rejecting rules run before flagging ones, so a
rejected value never counts towards a spike or a frozen run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from powerbus.nodes.metering.vee._config import VeeConfig
from powerbus.nodes.metering.vee._enums import QualityCode, VeeAction, VeeRule
from powerbus.nodes.metering.vee._grid import Work
from powerbus.nodes.metering.vee._history import History
from powerbus.nodes.metering.vee._model import IntervalRead, MeterSpec, VeeFinding
from powerbus.nodes.metering.vee._registers import Step

__all__ = [
    "check_clock",
    "check_frozen",
    "check_high_low",
    "check_spikes",
    "check_sum",
    "check_values",
    "check_zero_runs",
    "place_intervals",
]


def place_intervals(work: Work, meter: MeterSpec, reads: Sequence[IntervalRead]) -> None:
    """Put each read in its slot; wrong lengths, off-grid ends and conflicting repeats are
    rejected (identical repeats are one value)."""
    for read in reads:
        slot_index = work.grid.slot_of_end(read.end)
        if read.length is not None and read.length != meter.interval:
            detail = f"interval of {read.length}, meter's is {meter.interval}"
            _reject_read(work, slot_index, VeeRule.INTERVAL_SIZE, detail, read)
            continue
        if slot_index is None:
            detail = f"end {read.end.isoformat()} is not on the {meter.interval} grid"
            _reject_read(work, None, VeeRule.INTERVAL_SIZE, detail, read)
            continue
        slot = work.slots[slot_index]
        if slot.raw is None:
            slot.raw = slot.wh = read.wh
        elif slot.raw != read.wh:
            detail = f"{read.wh} Wh arrived again for this interval; kept {slot.raw} Wh"
            slot.flag(VeeRule.DUPLICATE, detail)
            _reject_read(work, slot_index, VeeRule.DUPLICATE, detail, read)


def _reject_read(
    work: Work, slot_index: int | None, rule: VeeRule, detail: str, read: IntervalRead
) -> None:
    # An off-grid read has no slot to point at, so the finding names the read's own time.
    end = read.end if slot_index is None else work.slots[slot_index].end
    work.rejected += 1
    work.findings.append(VeeFinding(rule, VeeAction.REJECTED, end, 1, read.wh, None, detail=detail))


def check_values(work: Work, meter: MeterSpec) -> None:
    """NEGATIVE_CONSUMPTION and PLAUSIBILITY: values no meter could have measured are
    rejected, kept as raw, and left for estimation."""
    limit = meter.max_wh()
    for i, slot in enumerate(work.slots):
        wh = slot.wh
        if wh is None or slot.quality is not QualityCode.VALID:
            continue
        if wh < 0 and not meter.net_metered:
            detail = f"{wh} Wh on a meter that is not net metered"
            slot.reject(VeeRule.NEGATIVE_CONSUMPTION, detail)
        elif limit is not None and abs(wh) > limit:
            detail = f"{wh} Wh over {limit} Wh ({meter.max_demand_w} W for {meter.interval})"
            slot.reject(VeeRule.PLAUSIBILITY, detail)
        else:
            continue
        work.rejected += 1
        work.find(slot.rule, VeeAction.REJECTED, i, detail=detail)


def check_clock(work: Work, clock_offset: timedelta | None, config: VeeConfig) -> None:
    """TIME_TOLERANCE for a batch read from a meter whose clock was off by ``clock_offset``."""
    if clock_offset is None or abs(clock_offset) <= config.time_tolerance:
        return
    detail = (
        f"meter clock off by {clock_offset.total_seconds():+.0f} s, "
        f"tolerance {config.time_tolerance}"
    )
    flagged = [s for s in work.slots if s.wh is not None]
    for slot in flagged:
        slot.flag(VeeRule.TIME_TOLERANCE, detail)
    if flagged:
        work.find(VeeRule.TIME_TOLERANCE, VeeAction.FLAGGED, 0, count=len(flagged), detail=detail)


def check_frozen(work: Work, config: VeeConfig) -> None:
    """FROZEN: the same non-zero value in ``frozen_intervals`` or more intervals in a row."""
    slots = work.slots
    i = 0
    while i < len(slots):
        wh = slots[i].wh
        j = i + 1
        if wh:
            while j < len(slots) and slots[j].wh == wh and slots[j].raw is not None:
                j += 1
        if wh and slots[i].raw is not None and j - i >= config.frozen_intervals:
            detail = f"{wh} Wh repeated in {j - i} intervals"
            for slot in slots[i:j]:
                slot.flag(VeeRule.FROZEN, detail)
            work.find(VeeRule.FROZEN, VeeAction.FLAGGED, i, count=j - i, detail=detail)
        i = j


def check_zero_runs(work: Work, history: History | None, config: VeeConfig) -> None:
    """ZERO_CONSUMPTION: a long run of zeros where the history expected real usage."""
    if history is None or history.days < config.history_min_days:
        return
    for first, length in work.runs(lambda s: s.wh == 0 and s.raw is not None):
        if length < config.zero_run_intervals:
            continue
        run = work.slots[first : first + length]
        expected = sum(history.expected(s.end) or 0 for s in run)
        if expected < config.zero_min_expected_wh:
            continue
        detail = f"{length} zero intervals where history expects {expected} Wh"
        for slot in run:
            slot.flag(VeeRule.ZERO_CONSUMPTION, detail)
        work.find(VeeRule.ZERO_CONSUMPTION, VeeAction.FLAGGED, first, count=length, detail=detail)


def check_spikes(work: Work, config: VeeConfig) -> None:
    """SPIKE: per local day, the highest interval over the third-highest by more than
    ``spike_percent`` (the day needs three values read)."""
    for indexes in work.local_days(config.zone):
        read = [i for i in indexes if _measured(work, i)]
        if len(read) < 3:
            continue
        ranked = sorted(read, key=lambda i: work.slots[i].wh or 0, reverse=True)
        highest = work.slots[ranked[0]].wh or 0
        third = work.slots[ranked[2]].wh or 0
        if highest < config.spike_min_wh:
            continue
        # highest > third × (1 + p/100), in integers
        if 100 * highest <= third * (100 + config.spike_percent):
            continue
        over = "∞" if third <= 0 else f"{100 * (highest - third) // third}%"
        detail = (
            f"spike {highest} Wh, {over} over third-highest {third} Wh, "
            f"tolerance {config.spike_percent}%"
        )
        work.slots[ranked[0]].flag(VeeRule.SPIKE, detail)
        work.find(VeeRule.SPIKE, VeeAction.FLAGGED, ranked[0], detail=detail)


def _measured(work: Work, index: int) -> bool:
    slot = work.slots[index]
    return slot.wh is not None and slot.raw is not None


def check_high_low(work: Work, history: History | None, config: VeeConfig) -> None:
    """HIGH_LOW: each whole local day's usage against the average daily usage."""
    if history is None or history.days < config.history_min_days or history.adu_wh <= 0:
        return
    per_day = int(timedelta(days=1) / work.grid.interval)
    adu = history.adu_wh
    for indexes in work.local_days(config.zone):
        slots = [work.slots[i] for i in indexes]
        if len(slots) != per_day or any(s.wh is None for s in slots):
            continue
        total = sum(s.wh or 0 for s in slots)
        if 100 * total > adu * (100 + config.high_percent):
            word, limit = "high", f"+{config.high_percent}%"
        elif 100 * total < adu * (100 - config.low_percent):
            word, limit = "low", f"-{config.low_percent}%"
        else:
            continue
        detail = f"day {word}: {total} Wh against ADU {adu} Wh, tolerance {limit}"
        for slot in slots:
            slot.flag(VeeRule.HIGH_LOW, detail)
        work.find(VeeRule.HIGH_LOW, VeeAction.FLAGGED, indexes[0], count=len(slots), detail=detail)


def check_sum(work: Work, steps: Sequence[Step], config: VeeConfig) -> None:
    """SUM_CHECK: over each register step (no reset inside), the intervals' sum against
    the register's delta, within the larger of the absolute and relative tolerances."""
    for step in steps:
        slots = work.slots[step.first : step.last]
        if step.wh is None or any(s.wh is None for s in slots):
            continue
        total = sum(s.wh or 0 for s in slots)
        tolerance = max(
            config.sum_tolerance_wh, int(abs(step.wh) * config.sum_tolerance_percent / 100)
        )
        if abs(total - step.wh) <= tolerance:
            continue
        detail = (
            f"intervals sum to {total} Wh, register moved {step.wh} Wh, tolerance {tolerance} Wh"
        )
        for slot in slots:
            slot.flag(VeeRule.SUM_CHECK, detail)
        work.find(VeeRule.SUM_CHECK, VeeAction.FLAGGED, step.first, count=len(slots), detail=detail)
