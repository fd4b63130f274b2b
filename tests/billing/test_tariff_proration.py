"""Part months and version changes inside a month, prorated by days."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from tariff_helpers import shipped, yuan

from powerbus.nodes.billing.tariff import (
    DemandBasis,
    InvalidUsage,
    TariffNotFound,
    TouPeriod,
    Usage,
    bill_period,
    quote,
)


def test_a_whole_month_under_one_version_is_the_quote() -> None:
    tariff = shipped("cn-beijing-residential")
    usage = Usage(kwh=Decimal("512.345"))
    whole = bill_period([tariff], usage, start=date(2026, 5, 1), end=date(2026, 6, 1))
    assert whole == quote(tariff, usage, billing_date=date(2026, 5, 1))


def test_move_in_prorates_the_monthly_thresholds() -> None:
    # 16 of 31 days: thresholds 240 × 16/31 = 123.871, 400 × 16/31 = 206.452 (to 0.001).
    # 200 × 0.4883 = 97.66; (200 − 123.871) × 0.05 = 3.80645 → 3.81.
    bill = bill_period(
        [shipped("cn-beijing-residential")],
        Usage(kwh=Decimal(200)),
        start=date(2026, 5, 16),
        end=date(2026, 6, 1),
    )
    assert yuan(bill) == "101.47"
    assert "123.871–206.452 kWh" in bill.lines[1].description_zh


def test_a_new_version_mid_month_splits_usage_and_thresholds_by_days() -> None:
    v1 = replace(
        shipped("cn-beijing-residential"),
        energy_price=Decimal("0.50"),
        effective_to=date(2026, 5, 11),
    )
    v2 = replace(
        v1, effective_from=date(2026, 5, 11), effective_to=None, energy_price=Decimal("0.60")
    )
    bill = bill_period(
        [v1, v2], Usage(kwh=Decimal(310)), start=date(2026, 5, 1), end=date(2026, 6, 1)
    )
    # 1-10 May: 100 kWh at 0.50 = 50.00; tier 2 from 240 × 10/31 = 77.419: 22.581 × 0.05
    # = 1.12905 → 1.13. 11-31 May: 210 kWh at 0.60 = 126.00; tier 2 from 240 × 21/31 =
    # 162.581: 47.419 × 0.05 = 2.37095 → 2.37.
    assert [line.amount_fen for line in bill.lines] == [50_00, 1_13, 126_00, 2_37]
    assert bill.lines[0].description_en.startswith("[2026-05-01–2026-05-10] ")
    assert bill.effective_from == date(2026, 5, 11)
    assert yuan(bill) == "179.50"


def test_annual_tiers_carry_the_first_segment_into_the_second() -> None:
    v1 = replace(shipped("cn-zhejiang-residential"), effective_to=date(2026, 5, 16))
    v2 = replace(v1, effective_from=date(2026, 5, 16), effective_to=None)
    usage = Usage(kwh=Decimal(310), year_to_date_kwh=Decimal(2600))
    split = bill_period([v1, v2], usage, start=date(2026, 5, 1), end=date(2026, 6, 1))
    whole = quote(v1, usage, billing_date=date(2026, 5, 1))
    # 150 + 160 kWh; the second half starts at 2750, so 150 kWh of tier 2 in all: the same
    # as the whole month, line by line but for rounding.
    assert abs(split.total_fen - whole.total_fen) <= 2
    assert yuan(whole) == "174.28"  # 166.78 + 150 × 0.05


def test_capacity_charge_of_a_part_month() -> None:
    tariff = shipped("cn-hubei-two-part-10kv", date(2026, 6, 1))
    usage = Usage(
        tou_kwh={TouPeriod.FLAT: Decimal(0)},
        demand_basis=DemandBasis.CAPACITY,
        capacity_kva=Decimal(1000),
    )
    bill = bill_period([tariff], usage, start=date(2026, 6, 16), end=date(2026, 7, 1))
    assert bill.lines[0].days == (15, 30)
    assert yuan(bill) == "13150.00"  # 1000 × 26.3 × 15/30


def test_periods_must_be_inside_one_month_and_covered_by_a_version() -> None:
    tariff = shipped("cn-hubei-two-part-10kv", date(2026, 6, 1))
    usage = Usage(kwh=Decimal(1), demand_basis=DemandBasis.CAPACITY, capacity_kva=Decimal(1))
    with pytest.raises(InvalidUsage, match="period"):
        bill_period([tariff], usage, start=date(2026, 6, 16), end=date(2026, 7, 2))
    with pytest.raises(TariffNotFound, match="2025-12-31"):
        bill_period([tariff], usage, start=date(2025, 12, 31), end=date(2026, 1, 1))
