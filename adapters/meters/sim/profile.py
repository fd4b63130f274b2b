"""Load shapes by customer class and the meters' time-of-use programs, as hourly tables.

Power in a local hour is ``mean_kw * day factor * shape[hour]``; a shape averages 1.0
over a weekday, so ``mean_kw`` is the meter's average weekday demand. Energy is the exact
integral of that step function, so a register read at any instant is consistent with
every earlier read and with the meter's stored history.

>>> day = day_table(CustomerClass.RESIDENTIAL, weekend=False, summer=False)
>>> max(range(24), key=lambda h: day.shape[h]) in range(18, 22)   # evening peak
True
>>> day.rate[3], day.rate[19], day.rate[22]   # a household's 峰谷 program: 峰 8-22
(4, 2, 4)
>>> day_table(CustomerClass.COMMERCIAL, weekend=False, summer=False).rate[12]   # 4-rate
2

Households' meters are programmed with the residential 峰谷 periods (峰 08:00-22:00 on
rate 2, 谷 22:00-08:00 on rate 4; Zhejiang's, FACTS §3a), so a residential tariff that
splits peak and valley bills from their registers; shops' and plants' meters with four
rates on Beijing's periods (FACTS §3b), which the 尖/峰/平/谷 commercial tariffs map.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum

__all__ = ["RATES", "CustomerClass", "DayTable", "day_table", "rate_of_hour"]

RATES = 4  # DL/T 645 rates 1-4: 尖峰, 峰, 平, 谷


class CustomerClass(str, Enum):
    """Whose load a meter measures; picks the load shape."""

    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"
    INDUSTRIAL = "industrial"


# Relative demand per local hour 0-23 (weekday, weekend).
_SHAPES: dict[CustomerClass, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # low at night, a breakfast bump, a long evening peak 18-22
    CustomerClass.RESIDENTIAL: (
        (0.35, 0.3, 0.3, 0.3, 0.3, 0.35, 0.6, 0.9, 0.8, 0.6, 0.55, 0.6,
         0.7, 0.6, 0.55, 0.6, 0.75, 1.0, 1.6, 2.1, 2.2, 2.0, 1.5, 0.8),
        (0.4, 0.35, 0.3, 0.3, 0.3, 0.35, 0.5, 0.7, 0.9, 1.0, 1.0, 1.1,
         1.1, 1.0, 0.95, 0.95, 1.0, 1.2, 1.7, 2.1, 2.2, 2.0, 1.6, 0.9),
    ),
    # shops and offices: open 8-18 on weekdays, quieter at weekends
    CustomerClass.COMMERCIAL: (
        (0.25, 0.25, 0.25, 0.25, 0.25, 0.3, 0.4, 0.8, 1.5, 1.8, 1.85, 1.85,
         1.7, 1.8, 1.85, 1.85, 1.8, 1.6, 1.2, 0.8, 0.6, 0.45, 0.3, 0.25),
        (0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.3, 0.4, 0.6, 0.8, 0.9, 0.9,
         0.9, 0.9, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.25),
    ),
    # flat two-shift plant with a lighter night shift 22-06
    CustomerClass.INDUSTRIAL: (
        (0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 1.05, 1.1, 1.1, 1.1, 1.1, 1.05,
         1.0, 1.1, 1.1, 1.1, 1.1, 1.1, 1.05, 1.05, 1.05, 1.05, 0.8, 0.8),
        (0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.75, 0.75, 0.75, 0.75, 0.7,
         0.7, 0.75, 0.75, 0.75, 0.75, 0.7, 0.7, 0.7, 0.7, 0.65, 0.6, 0.6),
    ),
}  # fmt: skip


def rate_of_hour(
    hour: int, *, summer: bool, customer: CustomerClass = CustomerClass.COMMERCIAL
) -> int:
    """The DL/T 645 rate 1-4 a meter of ``customer`` counts ``hour`` on. Households:
    峰 8-22 (rate 2), 谷 22-8 (rate 4). Others, Beijing's periods (FACTS §3b): 尖峰
    Jul-Aug 11-13 & 16-17; 峰 10-15 & 18-21; 平 7-10, 15-18, 21-23; 谷 23-7."""
    if customer is CustomerClass.RESIDENTIAL:
        return 2 if 8 <= hour < 22 else 4
    if summer and (11 <= hour < 13 or 16 <= hour < 17):
        return 1
    if 10 <= hour < 15 or 18 <= hour < 21:
        return 2
    if 7 <= hour < 10 or 15 <= hour < 18 or 21 <= hour < 23:
        return 3
    return 4


@dataclass(frozen=True, slots=True)
class DayTable:
    """One kind of day: hourly shape and rate, and running sums for fast integration.

    ``before[h]`` is the shape summed over hours < h (total), ``before_rate[h][r-1]`` the
    same per rate; ``total`` and ``by_rate`` are the whole day's.
    """

    shape: tuple[float, ...]
    rate: tuple[int, ...]
    before: tuple[float, ...]
    before_rate: tuple[tuple[float, ...], ...]

    @property
    def total(self) -> float:
        return self.before[24]

    @property
    def by_rate(self) -> tuple[float, ...]:
        return self.before_rate[24]


@functools.cache
def day_table(customer: CustomerClass, *, weekend: bool, summer: bool) -> DayTable:
    """The table of one class on one kind of day (cached; there are only 12)."""
    raw = _SHAPES[customer][1 if weekend else 0]
    norm = 24 / sum(_SHAPES[customer][0])
    shape = tuple(v * norm for v in raw)
    rate = tuple(rate_of_hour(h, summer=summer, customer=customer) for h in range(24))
    before = [0.0]
    before_rate = [(0.0,) * RATES]
    for h in range(24):
        before.append(before[-1] + shape[h])
        row = list(before_rate[-1])
        row[rate[h] - 1] += shape[h]
        before_rate.append(tuple(row))
    return DayTable(shape, rate, tuple(before), tuple(before_rate))
