"""Bill lines: what they say in both languages, funds on top or inside, power-factor
tables from the tariff, and usage that cannot be priced."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from tariff_helpers import quote_tou, shipped

from powerbus.nodes.billing.tariff import (
    InvalidUsage,
    LineKind,
    TouPeriod,
    Usage,
    kwh_from_wire,
    quote,
    tariff_from_dict,
)

DAY = date(2026, 3, 1)


def _tariff(**extra: Any) -> Any:
    return tariff_from_dict(
        {
            "tariff_id": "t-lines",
            "name": "示例",
            "customer_class": "industry_commerce",
            "voltage_level": "1_to_10kv",
            "region": "示例",
            "effective_from": "2026-01-01",
            "energy_price": "0.6",
            **extra,
        }
    )


def test_lines_explain_period_tier_kwh_price_and_amount_in_both_languages() -> None:
    bill = quote_tou("cn-jiangsu-residential-tou", ytd="2700", peak="100", valley="20")
    energy, _, surcharge = bill.lines
    assert energy.description_zh == "电度电费 高峰 100 kWh × 0.5583 元/kWh = 55.83 元"
    assert energy.description_en == "Energy, peak: 100 kWh × 0.5583 yuan/kWh = 55.83 yuan"
    assert (energy.tou_period, energy.unit, energy.amount_fen) == (TouPeriod.PEAK, "kWh", 55_83)
    assert (
        surcharge.description_zh == "第2档阶梯加价 (2760–4800 kWh) 60 kWh × 0.05 元/kWh = 3.00 元"
    )
    assert surcharge.description_en.startswith("Tier 2 surcharge (2760–4800 kWh): 60 kWh")
    assert surcharge.tier_level == 2
    assert bill.table(english=True).splitlines()[-1].split() == [
        "66.00",
        "Total",
    ]  # 55.83 + 7.166 → 7.17 + 3.00


def test_funds_not_in_the_price_are_added_and_left_out_of_the_power_factor_base() -> None:
    tariff = _tariff(government_funds=[{"name": "可再生能源电价附加", "price": "0.019"}])
    usage = Usage(
        kwh=Decimal(1000), reactive_kvarh=Decimal(1000), power_factor_standard=Decimal("0.90")
    )
    bill = quote(tariff, usage, billing_date=DAY)
    _, fund, adjustment = bill.lines
    assert (fund.kind, fund.amount_fen, fund.informational) == (
        LineKind.GOVERNMENT_FUND,
        19_00,
        False,
    )
    # PF 1000/√2000000 = 0.7071 → 0.71: +9.5 % of the energy charge only (600.00) = 57.00
    assert (str(bill.power_factor), adjustment.basis_fen, adjustment.amount_fen) == (
        "0.71",
        600_00,
        57_00,
    )
    assert bill.total_fen == 600_00 + 19_00 + 57_00


def test_a_tariff_table_overrides_the_built_in_one() -> None:
    tariff = _tariff(
        power_factor_tables=[
            {
                "standard": "0.85",
                "steps": [
                    {"power_factor": "0.85", "adjustment_percent": "0"},
                    {"power_factor": "0.94", "adjustment_percent": "-1.0"},
                ],
            }
        ]
    )
    usage = Usage(kwh=Decimal(1000), power_factor_standard=Decimal("0.85"))
    bill = quote(tariff, usage, billing_date=DAY)
    assert (str(bill.power_factor), bill.lines[-1].amount_fen) == ("1.00", -6_00)  # −1.0 % of 600
    usage = Usage(kwh=Decimal(1000), power_factor_standard=Decimal("0.75"))
    with pytest.raises(InvalidUsage, match=r"power_factor_standard: 0\.75 is not one of"):
        quote(tariff, usage, billing_date=DAY)


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        (Usage(kwh=Decimal(-1)), "kwh"),
        (Usage(kwh=Decimal("NaN")), "kwh"),
        (Usage(kwh=Decimal(10), tou_kwh={TouPeriod.PEAK: Decimal(5)}), "tou_kwh"),
        (Usage(tou_kwh={TouPeriod.PEAK: Decimal(-5)}), "tou_kwh[peak]"),
        (Usage(kwh=Decimal(1), max_demand_kw=Decimal(-1)), "max_demand_kw"),
    ],
)
def test_usage_that_cannot_be_priced_names_its_field(usage: Usage, field: str) -> None:
    with pytest.raises(InvalidUsage) as caught:
        quote(shipped("cn-zhejiang-residential-tou"), usage, billing_date=DAY)
    assert caught.value.field == field


def test_a_tou_split_within_a_milli_kwh_of_the_total_is_accepted() -> None:
    usage = Usage(
        kwh=Decimal("10.001"), tou_kwh={TouPeriod.PEAK: Decimal(6), TouPeriod.VALLEY: Decimal(4)}
    )
    bill = quote(shipped("cn-zhejiang-residential-tou"), usage, billing_date=DAY)
    assert bill.kwh == Decimal(10)  # the split is what is priced


def test_wire_doubles_become_exact_milli_kwh() -> None:
    assert kwh_from_wire(0.1) == Decimal("0.100")
    assert kwh_from_wire(2760.0005) == Decimal("2760.001")  # half up
    assert kwh_from_wire(1e-4) == Decimal("0.000")
