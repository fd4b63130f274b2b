"""Customer segments from usage, for marketing: pure functions of monthly kWh.

A customer has one usage class (from yearly kWh) and any number of traits: peak-heavy,
seasonal, declining, growing, dormant. The thresholds are named constants below, each
with the reason for its value.

>>> months = [MonthlyKwh(2026, m, kwh) for m, kwh in enumerate(
...     [300, 280, 200, 150, 160, 320, 480, 500, 300, 180, 200, 290], start=1)]
>>> profile = segment(months, residential=True, peak_share=0.66)
>>> profile.usage_class.value, sorted(t.value for t in profile.traits)
('residential_tier_2', ['peak_heavy', 'seasonal'])
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "MonthlyKwh",
    "SegmentProfile",
    "Trait",
    "UsageClass",
    "segment",
    "trend_per_month",
    "usage_class",
    "yearly_kwh",
]

# Residential tiers of the annual tiered tariff (Zhejiang, Jiangsu: 2760 / 4800 kWh a
# year; FACTS §3a): the classes match what the customer pays.
TIER_1_KWH = 2760.0
TIER_2_KWH = 4800.0
# Non-residential size bands, kWh a year: a shop, a workshop, a plant.
SMALL_BUSINESS_KWH = 50_000.0
MEDIUM_BUSINESS_KWH = 500_000.0
# Share of kWh in peak hours above which shifting load to the valley pays off for the
# customer: peak 8:00-21:00 is 13 of 24 hours (54 %), so flat usage already sits near it.
PEAK_HEAVY_SHARE = 0.60
# Month-to-month coefficient of variation of a customer with summer cooling or winter
# heating; flat households stay near 0.1-0.2.
SEASONAL_CV = 0.35
# Trend, as a fraction of mean monthly use per month, that is more than noise.
TREND_PER_MONTH = 0.03
# With two years of history, a change of this much year over year is a trend; comparing
# the same months cancels the seasons, which a straight line through one year cannot.
YEAR_OVER_YEAR_CHANGE = 0.15
# Below this a month's use is that of an empty dwelling (fridge off, standby only).
DORMANT_MONTH_KWH = 5.0
_MIN_MONTHS_FOR_SHAPE = 6


class UsageClass(str, Enum):
    """Size of a customer's use, by yearly kWh."""

    RESIDENTIAL_TIER_1 = "residential_tier_1"
    RESIDENTIAL_TIER_2 = "residential_tier_2"
    RESIDENTIAL_TIER_3 = "residential_tier_3"
    SMALL_BUSINESS = "small_business"
    MEDIUM_BUSINESS = "medium_business"
    LARGE_BUSINESS = "large_business"
    UNKNOWN = "unknown"


class Trait(str, Enum):
    """Shape of a customer's use."""

    PEAK_HEAVY = "peak_heavy"
    SEASONAL = "seasonal"
    DECLINING = "declining"
    GROWING = "growing"
    DORMANT = "dormant"


@dataclass(frozen=True)
class MonthlyKwh:
    """kWh used in one calendar month."""

    year: int
    month: int
    kwh: float


@dataclass(frozen=True)
class SegmentProfile:
    """A customer's usage class and traits, and the yearly kWh they came from."""

    usage_class: UsageClass
    traits: frozenset[Trait]
    yearly_kwh: float | None


def yearly_kwh(months: Sequence[MonthlyKwh]) -> float | None:
    """kWh over the last 12 months, scaled up from fewer; ``None`` without any month."""
    recent = _ordered(months)[-12:]
    if not recent:
        return None
    return sum(m.kwh for m in recent) * 12 / len(recent)


def usage_class(yearly: float | None, *, residential: bool) -> UsageClass:
    """The class of a yearly consumption."""
    if yearly is None:
        return UsageClass.UNKNOWN
    if residential:
        if yearly <= TIER_1_KWH:
            return UsageClass.RESIDENTIAL_TIER_1
        return (
            UsageClass.RESIDENTIAL_TIER_2 if yearly <= TIER_2_KWH else UsageClass.RESIDENTIAL_TIER_3
        )
    if yearly < SMALL_BUSINESS_KWH:
        return UsageClass.SMALL_BUSINESS
    return UsageClass.MEDIUM_BUSINESS if yearly < MEDIUM_BUSINESS_KWH else UsageClass.LARGE_BUSINESS


def trend_per_month(months: Sequence[MonthlyKwh]) -> float:
    """Least-squares slope of monthly kWh, as a fraction of the mean per month (0 when
    flat, unknown or fewer than two months)."""
    values = [m.kwh for m in _ordered(months)]
    if len(values) < 2 or statistics.fmean(values) <= 0:
        return 0.0
    xs = list(range(len(values)))
    slope = statistics.linear_regression(xs, values).slope
    return slope / statistics.fmean(values)


def segment(
    months: Sequence[MonthlyKwh], *, residential: bool, peak_share: float | None = None
) -> SegmentProfile:
    """The profile of a customer from their monthly kWh (any order) and, when known, the
    share of their kWh used in peak hours."""
    ordered = _ordered(months)
    traits: set[Trait] = set()
    if peak_share is not None and peak_share >= PEAK_HEAVY_SHARE:
        traits.add(Trait.PEAK_HEAVY)
    values = [m.kwh for m in ordered]
    if len(values) >= 3 and all(v < DORMANT_MONTH_KWH for v in values[-3:]):
        traits.add(Trait.DORMANT)
    if len(values) >= _MIN_MONTHS_FOR_SHAPE and statistics.fmean(values) > 0:
        # Seasonality is judged on a whole year when there is one, so a trend alone does
        # not read as a season.
        seasonal = statistics.pstdev(values[-12:]) / statistics.fmean(values[-12:]) >= SEASONAL_CV
        if seasonal:
            traits.add(Trait.SEASONAL)
        traits |= _trend(ordered, seasonal=seasonal)
    yearly = yearly_kwh(ordered)
    return SegmentProfile(usage_class(yearly, residential=residential), frozenset(traits), yearly)


def _trend(ordered: Sequence[MonthlyKwh], *, seasonal: bool) -> set[Trait]:
    """DECLINING or GROWING: year over year with two years of history; else from the
    straight-line slope, but only for a customer without seasons (a summer peak would
    read as growth in the first half of a year)."""
    values = [m.kwh for m in ordered]
    if len(values) >= 24:
        before = sum(values[-24:-12])
        if before <= 0:
            return set()
        change = sum(values[-12:]) / before - 1
        if change <= -YEAR_OVER_YEAR_CHANGE:
            return {Trait.DECLINING}
        return {Trait.GROWING} if change >= YEAR_OVER_YEAR_CHANGE else set()
    if seasonal:
        return set()
    slope = trend_per_month(ordered)
    if slope <= -TREND_PER_MONTH:
        return {Trait.DECLINING}
    return {Trait.GROWING} if slope >= TREND_PER_MONTH else set()


def _ordered(months: Sequence[MonthlyKwh]) -> list[MonthlyKwh]:
    return sorted(months, key=lambda m: (m.year, m.month))
