"""Customer segments from usage: each class and trait, and their boundaries."""

from __future__ import annotations

import pytest

from powerbus.nodes.crm.segments import (
    MonthlyKwh,
    Trait,
    UsageClass,
    segment,
    trend_per_month,
    usage_class,
    yearly_kwh,
)


def year(values: list[float], start_year: int = 2025) -> list[MonthlyKwh]:
    months = []
    for index, kwh in enumerate(values):
        y, m = divmod(index, 12)
        months.append(MonthlyKwh(start_year + y, m + 1, kwh))
    return months


FLAT = [200.0] * 12


@pytest.mark.parametrize(
    ("yearly", "residential", "expected"),
    [
        (2760, True, UsageClass.RESIDENTIAL_TIER_1),
        (2761, True, UsageClass.RESIDENTIAL_TIER_2),
        (4800, True, UsageClass.RESIDENTIAL_TIER_2),
        (4801, True, UsageClass.RESIDENTIAL_TIER_3),
        (49_999, False, UsageClass.SMALL_BUSINESS),
        (50_000, False, UsageClass.MEDIUM_BUSINESS),
        (500_000, False, UsageClass.LARGE_BUSINESS),
        (None, True, UsageClass.UNKNOWN),
    ],
)
def test_usage_class_boundaries(
    yearly: float | None, residential: bool, expected: UsageClass
) -> None:
    assert usage_class(yearly, residential=residential) is expected


def test_yearly_kwh_scales_a_short_history() -> None:
    assert yearly_kwh(year([100.0] * 6)) == 1200.0
    assert yearly_kwh(year([100.0] * 24)) == 1200.0  # only the last 12 months
    assert yearly_kwh([]) is None


def test_flat_usage_has_no_traits() -> None:
    profile = segment(year(FLAT), residential=True, peak_share=0.5)
    assert profile.traits == frozenset()
    assert profile.usage_class is UsageClass.RESIDENTIAL_TIER_1


def test_peak_heavy_from_the_peak_share() -> None:
    assert Trait.PEAK_HEAVY in segment(year(FLAT), residential=True, peak_share=0.6).traits
    assert Trait.PEAK_HEAVY not in segment(year(FLAT), residential=True, peak_share=0.59).traits
    assert Trait.PEAK_HEAVY not in segment(year(FLAT), residential=True).traits


def test_summer_cooling_is_seasonal_not_a_trend() -> None:
    summer = [150, 140, 150, 160, 200, 400, 600, 620, 380, 180, 150, 150]
    traits = segment(year(summer), residential=True).traits
    assert traits == {Trait.SEASONAL}


def test_declining_and_growing() -> None:
    falling = [300 - 15 * i for i in range(12)]
    rising = [100 + 10 * i for i in range(12)]
    assert Trait.DECLINING in segment(year(falling), residential=True).traits
    assert Trait.GROWING in segment(year(rising), residential=True).traits
    assert trend_per_month(year(falling)) < -0.03 < 0.03 < trend_per_month(year(rising))


def test_two_years_compare_year_over_year() -> None:
    summer = [150, 140, 150, 160, 200, 400, 600, 620, 380, 180, 150, 150]
    shrinking = summer + [v * 0.8 for v in summer]
    steady = summer + summer
    assert segment(year(shrinking), residential=True).traits == {Trait.SEASONAL, Trait.DECLINING}
    assert segment(year(steady), residential=True).traits == {Trait.SEASONAL}


def test_dormant_after_three_empty_months() -> None:
    moved_out = [200.0] * 9 + [2.0, 1.0, 0.0]
    assert Trait.DORMANT in segment(year(moved_out), residential=True).traits
    assert Trait.DORMANT not in segment(year([200.0] * 10 + [1.0, 1.0]), residential=True).traits


def test_shape_needs_six_months() -> None:
    assert segment(year([100, 500, 100, 500, 100]), residential=True).traits == frozenset()


def test_month_order_does_not_matter() -> None:
    months = year([300 - 15 * i for i in range(12)])
    assert segment(months[::-1], residential=True) == segment(months, residential=True)
