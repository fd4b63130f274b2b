"""Billing determinants of one meter over a period (``SummarizeUsage``): forward and
reverse energy, reactive energy, maximum demand and energy per TOU window, in integers.

Forward energy is the register difference when registers were read exactly at both ends
of the period (with the register's rollover), else the difference of the registers the
meter froze at both ends (a DL/T 645 meter's daily freeze, read back on first contact:
how a 采集 system bills a month it did not poll from its start), else the sum of the
intervals. With frozen registers and intervals missing, the TOU split is the difference
of the frozen rate registers, rate 1-4 being 尖峰/峰/平/谷 (the meter is programmed with
the customer's tariff periods); a window label with no rate, or a rate used outside the
windows asked for, leaves the split unknown and the summary incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from powerbus.nodes.metering.store._records import (
    FROZEN_FORWARD_KWH,
    StoredInterval,
    StoredRegister,
)
from powerbus.nodes.metering.store._windows import WindowTable

__all__ = ["RATE_LABELS", "UsageSummary", "summarize_values"]

RATE_LABELS = {1: "sharp_peak", 2: "peak", 3: "flat", 4: "valley"}
"""DL/T 645 rate number → the TOU window label billing uses for it."""


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Determinants in Wh, varh and W (the proto edge turns them into kWh, kvarh, kW)."""

    meter_id: str
    start: datetime
    end: datetime
    wh: int
    export_wh: int
    reactive_varh: int
    max_demand_w: int
    max_demand_at: datetime | None
    window_wh: tuple[tuple[str, int], ...]
    values_total: int
    values_estimated: int
    complete: bool


def summarize_values(
    meter_id: str,
    start: datetime,
    end: datetime,
    *,
    forward: Sequence[StoredInterval],
    reverse: Sequence[StoredInterval] = (),
    reactive: Sequence[StoredInterval] = (),
    registers: Sequence[StoredRegister] = (),
    frozen: Sequence[StoredRegister] = (),
    windows: WindowTable | None = None,
    interval: timedelta = timedelta(minutes=15),
    rollover_wh: int = 0,
) -> UsageSummary:
    """Total the stored values of one meter; ``forward`` etc. are already in the period."""
    good = [s.value for s in forward if s.value.wh is not None]
    wh = sum(v.wh or 0 for v in good)
    all_intervals = len(good) == (end - start) // interval
    register_wh = _register_delta(registers, start, end, rollover_wh)
    rates: dict[int, int] = {}
    if register_wh is None and not all_intervals:
        rates = _frozen_deltas(frozen, start, end, rollover_wh)
        register_wh = rates.pop(0, None)
    if register_wh is not None:
        wh = register_wh
    seconds = int(interval.total_seconds())
    peak = max(good, key=lambda v: (v.wh or 0, -v.end.timestamp()), default=None)
    buckets: dict[str, int] = dict.fromkeys(windows.labels, 0) if windows else {}
    split_known = True
    if windows is not None and rates:
        split = _rate_split(rates, windows.labels)
        split_known = split is not None
        buckets = split or buckets
    elif windows is not None:
        for v in good:
            label = windows.label_of(v.end - interval)
            buckets[label] += v.wh or 0
    used = [*forward, *reverse, *reactive]
    return UsageSummary(
        meter_id=meter_id,
        start=start,
        end=end,
        wh=wh,
        export_wh=sum(s.value.wh or 0 for s in reverse),
        reactive_varh=sum(abs(s.value.wh or 0) for s in reactive),
        max_demand_w=(peak.wh or 0) * 3600 // seconds if peak else 0,
        max_demand_at=peak.end if peak else None,
        window_wh=tuple(buckets.items()),
        values_total=len(used),
        values_estimated=sum(1 for s in used if s.value.estimated),
        complete=(register_wh is not None and split_known) or all_intervals,
    )


def _frozen_deltas(
    frozen: Sequence[StoredRegister], start: datetime, end: datetime, rollover_wh: int
) -> dict[int, int]:
    """Rate (0 = total) → its frozen register's difference over the period, for the
    rates frozen at both ends."""
    deltas = {}
    for tou, reading_type in enumerate(FROZEN_FORWARD_KWH):
        of_rate = [r for r in frozen if r.record.reading_type == reading_type]
        delta = _register_delta(of_rate, start, end, rollover_wh)
        if delta is not None:
            deltas[tou] = delta
    return deltas


def _rate_split(rates: dict[int, int], labels: Sequence[str]) -> dict[str, int] | None:
    """Window label → Wh from the rate registers; ``None`` when they cannot say."""
    split = dict.fromkeys(labels, 0)
    for rate, wh in rates.items():
        label = RATE_LABELS.get(rate)
        if label in split:
            split[label] += wh
        elif wh:
            return None  # energy on a rate the tariff has no window for
    if set(labels) - {RATE_LABELS[r] for r in rates}:
        return None  # a window the meter has no rate register for
    return split


def _register_delta(
    registers: Sequence[StoredRegister], start: datetime, end: datetime, rollover_wh: int
) -> int | None:
    at = {r.record.read_at: r.record.value for r in registers}
    if start not in at or end not in at:
        return None
    delta = at[end] - at[start]
    if delta < 0 and rollover_wh:
        delta += rollover_wh
    return delta if delta >= 0 else None
