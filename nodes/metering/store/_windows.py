"""Local time-of-day windows (a tariff's TOU periods) and the bucket each interval goes to.

An interval goes in the window its *start* falls in, in local time, as
``SummarizeUsage`` says. In every month the windows that apply must cover each minute
of the day exactly once.

>>> day = [LocalWindow("valley", 1380, 420), LocalWindow("peak", 420, 1380)]
>>> table = WindowTable(day, time_zone="Asia/Shanghai")
>>> from datetime import datetime, timezone
>>> table.label_of(datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc))  # 08:00 local
'peak'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["LocalWindow", "WindowTable"]

_DAY = 1440


@dataclass(frozen=True, slots=True)
class LocalWindow:
    """``[start_minute, end_minute)`` after local midnight, wrapping past midnight when
    ``end_minute <= start_minute``; ``months`` empty for every month."""

    label: str
    start_minute: int
    end_minute: int
    months: frozenset[int] = field(default_factory=frozenset)

    def minutes(self) -> range | list[int]:
        if self.end_minute > self.start_minute:
            return range(self.start_minute, self.end_minute)
        return [*range(self.start_minute, _DAY), *range(0, self.end_minute)]


class WindowTable:
    """The label of every local minute of the day, per month, checked for coverage."""

    def __init__(self, windows: Sequence[LocalWindow], *, time_zone: str) -> None:
        try:
            self.zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument("time_zone", f"unknown zone {time_zone!r}") from None
        self.labels = list(dict.fromkeys(w.label for w in windows))
        self._by_month: dict[int, list[str]] = {}
        for month in range(1, 13):
            self._by_month[month] = self._month(windows, month)

    def _month(self, windows: Sequence[LocalWindow], month: int) -> list[str]:
        minute_label: list[str | None] = [None] * _DAY
        for i, w in enumerate(windows):
            if not (0 <= w.start_minute < _DAY and 0 <= w.end_minute <= _DAY):
                raise InvalidArgument(f"windows[{i}]", "minutes must be within 0-1440")
            if w.months and month not in w.months:
                continue
            for minute in w.minutes():
                if minute_label[minute] is not None:
                    raise InvalidArgument(
                        f"windows[{i}]", f"overlaps {minute_label[minute]!r} in month {month}"
                    )
                minute_label[minute] = w.label
        gaps = [m for m, label in enumerate(minute_label) if label is None]
        if gaps:
            raise InvalidArgument(
                "windows", f"minute {gaps[0]} of the day is in no window in month {month}"
            )
        return [label for label in minute_label if label is not None]

    def label_of(self, start: datetime) -> str:
        """The label of the window the local time ``start`` falls in."""
        local = start.astimezone(self.zone)
        return self._by_month[local.month][local.hour * 60 + local.minute]
