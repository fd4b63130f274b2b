"""Billing determinants of one meter over a period (``SummarizeUsage``): forward and
reverse energy, reactive energy, maximum demand and energy per TOU window, in integers.

Forward energy is the register difference when registers were read exactly at both ends
of the period (with the register's rollover), else the sum of the intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from powerbus.nodes.metering.store._records import StoredInterval, StoredRegister
from powerbus.nodes.metering.store._windows import WindowTable

__all__ = ["UsageSummary", "summarize_values"]


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
    windows: WindowTable | None = None,
    interval: timedelta = timedelta(minutes=15),
    rollover_wh: int = 0,
) -> UsageSummary:
    """Total the stored values of one meter; ``forward`` etc. are already in the period."""
    good = [s.value for s in forward if s.value.wh is not None]
    wh = sum(v.wh or 0 for v in good)
    register_wh = _register_delta(registers, start, end, rollover_wh)
    if register_wh is not None:
        wh = register_wh
    seconds = int(interval.total_seconds())
    peak = max(good, key=lambda v: (v.wh or 0, -v.end.timestamp()), default=None)
    buckets: dict[str, int] = dict.fromkeys(windows.labels, 0) if windows else {}
    if windows is not None:
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
        complete=register_wh is not None or len(good) == (end - start) // interval,
    )


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
