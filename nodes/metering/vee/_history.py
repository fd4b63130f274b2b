"""A meter's usage history as VEE uses it: average daily usage (ADU) for HIGH_LOW, and
the average of each interval of the local day for ZERO_CONSUMPTION and for estimating
long gaps (Oracle's "Interval Averaging Estimation").

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
>>> past = [(t0 + timedelta(minutes=15 * (i + 1)), 100) for i in range(96 * 7)]
>>> h = History.from_intervals(past, interval=timedelta(minutes=15), zone="UTC")
>>> h.days, h.adu_wh, h.expected(t0 + timedelta(minutes=15))
(7, 9600, 100)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["History"]


@dataclass(frozen=True, slots=True)
class History:
    """Averages over ``days`` whole local days of good values.

    ``slot_wh`` maps the local minute of the day an interval starts at to its average Wh.
    """

    interval: timedelta
    zone: str
    days: int = 0
    adu_wh: int = 0
    slot_wh: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def from_intervals(
        cls, values: Iterable[tuple[datetime, int]], *, interval: timedelta, zone: str
    ) -> History:
        """From ``(end, wh)`` pairs of good past values; partial days are left out, so a
        day with a gap does not pull the averages down."""
        tz = ZoneInfo(zone)
        per_day: dict[date, dict[int, int]] = defaultdict(dict)
        for end, wh in values:
            start = (end - interval).astimezone(tz)
            per_day[start.date()][start.hour * 60 + start.minute] = wh
        full = int(timedelta(days=1) / interval)
        days = [slots for slots in per_day.values() if len(slots) == full]
        if not days:
            return cls(interval, zone)
        totals: dict[int, int] = defaultdict(int)
        for slots in days:
            for minute, wh in slots.items():
                totals[minute] += wh
        n = len(days)
        slot_wh = {minute: _div_round(total, n) for minute, total in totals.items()}
        return cls(interval, zone, n, _div_round(sum(totals.values()), n), slot_wh)

    def expected(self, end: datetime) -> int | None:
        """The average Wh of the interval ending at ``end``; None without history."""
        start = (end - self.interval).astimezone(ZoneInfo(self.zone))
        return self.slot_wh.get(start.hour * 60 + start.minute)


def _div_round(total: int, n: int) -> int:
    """``total / n`` rounded half up, in integers."""
    return (2 * total + n) // (2 * n)
