"""Hand-computed bills for every shipped tariff, tier and period edges included.

Each expected figure was worked out by hand from the tariff's file comment (kWh × price,
rounded half up per line), not by running the engine.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tariff_helpers import quote_kwh, quote_tou, shipped, yuan

from powerbus.nodes.billing.tariff import (
    DemandBasis,
    InvalidUsage,
    LineKind,
    TouPeriod,
    Usage,
    load_shipped,
    quote,
)

SHIPPED = {
    "cn-beijing-residential",
    "cn-guangdong-commercial",
    "cn-hubei-commercial-10kv",
    "cn-hubei-two-part-10kv",
    "cn-jiangsu-residential-tou",
    "cn-residential-seasonal",
    "cn-zhejiang-residential",
    "cn-zhejiang-residential-tou",
}


def test_the_catalogue_ships_every_tariff_of_the_issue() -> None:
    assert set(load_shipped().ids()) == SHIPPED


@pytest.mark.parametrize(
    ("kwh", "total"),
    [
        ("0", "0.00"),
        ("240", "117.19"),  # 117.192: last kWh of tier 1
        ("241", "117.73"),  # 117.6803 → 117.68, + 1 × 0.05
        ("400", "203.32"),  # 195.32 + 160 × 0.05
        ("401", "204.11"),  # 195.8083 → 195.81, + 8.00 + 1 × 0.30
    ],
)
def test_beijing(kwh: str, total: str) -> None:
    assert yuan(quote_kwh("cn-beijing-residential", kwh)) == total


@pytest.mark.parametrize(
    ("kwh", "ytd", "total"),
    [
        ("100", "2700", "55.80"),  # 53.80 + 40 × 0.05
        ("1", "2760", "0.59"),  # 0.538 → 0.54, + 0.05: first kWh of tier 2
        ("100", "4800", "83.80"),  # 53.80 + 100 × 0.30
        ("60", "2700", "32.28"),  # 32.28: ends exactly on 2760, no surcharge
    ],
)
def test_zhejiang_annual_with_year_to_date(kwh: str, ytd: str, total: str) -> None:
    bill = quote_kwh("cn-zhejiang-residential", kwh, year_to_date_kwh=Decimal(ytd))
    assert yuan(bill) == total


@pytest.mark.parametrize(
    ("ytd", "peak", "valley", "total"),
    [
        ("0", "100", "50", "71.20"),  # 56.80 + 14.40
        # 5.68 + 2.88 + 10 × 0.05; per tier in proportion: 2.84 + 3.09 + 1.44 + 1.69 = 9.06
        ("2750", "10", "10", "9.06"),
        ("4790", "20", "0", "14.86"),  # 11.36 + 10 × 0.05 + 10 × 0.30
    ],
)
def test_zhejiang_tou(ytd: str, peak: str, valley: str, total: str) -> None:
    bill = quote_tou("cn-zhejiang-residential-tou", ytd=ytd, peak=peak, valley=valley)
    assert yuan(bill) == total


def test_zhejiang_tou_quoted_on_kwh_alone_uses_the_flat_price() -> None:
    assert yuan(quote_kwh("cn-zhejiang-residential-tou", "100")) == "53.80"


@pytest.mark.parametrize(
    ("ytd", "peak", "valley", "total"),
    [
        ("0", "200", "100", "147.49"),  # 111.66 + 35.83
        ("2760", "100", "0", "60.83"),  # 55.83 + 100 × 0.05: first kWh of tier 2
        ("0", "3000", "2000", "2553.50"),  # 1674.90 + 716.60 + 102.00 + 60.00
    ],
)
def test_jiangsu_tou(ytd: str, peak: str, valley: str, total: str) -> None:
    bill = quote_tou("cn-jiangsu-residential-tou", ytd=ytd, peak=peak, valley=valley)
    assert yuan(bill) == total


def test_jiangsu_has_no_flat_price_so_kwh_alone_is_refused() -> None:
    with pytest.raises(InvalidUsage, match=r"tou_kwh: .*no flat price"):
        quote_kwh("cn-jiangsu-residential-tou", "100")


@pytest.mark.parametrize(
    ("month", "kwh", "allowance", "total"),
    [
        (7, "300", "0", "184.66"),  # summer 260/600: 182.661 → 182.66, + 40 × 0.05
        (1, "300", "0", "187.66"),  # non-summer 200/400: 182.66 + 100 × 0.05
        (1, "300", "100", "182.66"),  # +100 allowance: thresholds 300/500
        (7, "700", "100", "443.21"),  # 360/700: 426.209 → 426.21, + 340 × 0.05
        (7, "601", "0", "383.23"),  # 365.93087 → 365.93, + 17.00 + 1 × 0.30
        (4, "250", "0", "154.72"),  # April is non-summer: 152.2175 → 152.22, + 50 × 0.05
        (5, "250", "0", "152.22"),  # May is summer: all in tier 1
    ],
)
def test_seasonal_monthly_tiers(month: int, kwh: str, allowance: str, total: str) -> None:
    bill = quote_kwh(
        "cn-residential-seasonal", kwh, month=month, tier_allowance_kwh=Decimal(allowance)
    )
    assert yuan(bill) == total


def _period_at(tariff_id: str, month: int, hhmm: str) -> TouPeriod:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    minute = hours * 60 + minutes
    tariff = shipped(tariff_id, date(2026, month, 1))
    for window in tariff.windows_in(month):
        spans = window.minutes()
        if any(minute in span for span in (spans if isinstance(spans, tuple) else (spans,))):
            return window.period
    raise AssertionError("no window")


@pytest.mark.parametrize(
    ("month", "hhmm", "period"),
    [
        (7, "20:00", "sharp_peak"),
        (7, "19:59", "peak"),
        (8, "22:00", "peak"),
        (3, "18:00", "sharp_peak"),
        (3, "20:00", "peak"),
        (9, "21:30", "peak"),
        (1, "12:00", "valley"),
        (1, "05:59", "valley"),
        (1, "06:00", "flat"),
        (12, "23:59", "peak"),
    ],
)
def test_hubei_periods_by_hour_and_month(month: int, hhmm: str, period: str) -> None:
    for tariff_id in ("cn-hubei-commercial-10kv", "cn-hubei-two-part-10kv"):
        assert _period_at(tariff_id, month, hhmm) is TouPeriod(period)


def test_hubei_commercial_prices_each_period_and_keeps_funds_informational() -> None:
    bill = quote_tou(
        "cn-hubei-commercial-10kv", month=7, sharp_peak="100", peak="200", flat="300", valley="400"
    )
    # 111.3999 → 111.40, 182.1922 → 182.19, 214.7058 → 214.71, 198.7696 → 198.77
    assert yuan(bill) == "707.07"
    funds = [line for line in bill.lines if line.kind is LineKind.GOVERNMENT_FUND]
    assert [(line.amount_fen, line.informational) for line in funds] == [
        (20_00, True),
        (6_20, True),
        (19_00, True),
    ]


def test_hubei_commercial_in_march() -> None:
    # 55.69995 → 55.70, 496.924 → 496.92, 0.357843 → 0.36
    bill = quote_tou(
        "cn-hubei-commercial-10kv", month=3, sharp_peak="50", valley="1000", flat="0.5"
    )
    assert yuan(bill) == "552.98"


def test_hubei_commercial_flat_quote_and_unpriced_period() -> None:
    assert yuan(quote_kwh("cn-hubei-commercial-10kv", "1000")) == "715.69"  # 715.686
    with pytest.raises(InvalidUsage, match="deep_valley"):
        quote_tou("cn-hubei-commercial-10kv", deep_valley="1")


@pytest.mark.parametrize(
    ("month", "hhmm", "period"),
    [
        (8, "11:30", "sharp_peak"),
        (1, "11:30", "peak"),
        (9, "16:59", "sharp_peak"),
        (10, "16:00", "peak"),
        (7, "17:00", "peak"),
        (7, "09:00", "flat"),
        (7, "19:00", "flat"),
        (7, "03:00", "valley"),
    ],
)
def test_guangdong_periods(month: int, hhmm: str, period: str) -> None:
    assert _period_at("cn-guangdong-commercial", month, hhmm) is TouPeriod(period)


@pytest.mark.parametrize(
    ("usage", "total"),
    [
        ({"sharp_peak": "10"}, "13.81"),  # 13.8125
        ({"sharp_peak": "6"}, "8.29"),  # 8.2875
        ({"flat": "0.1"}, "0.07"),  # 0.065: a half fen rounds up
        ({"peak": "100", "flat": "100", "valley": "1000"}, "422.50"),  # 110.50 + 65 + 247
    ],
)
def test_guangdong_ratio_prices(usage: dict[str, str], total: str) -> None:
    assert yuan(quote_tou("cn-guangdong-commercial", month=8, **usage)) == total


def _two_part(**fields: object) -> str:
    tariff = shipped("cn-hubei-two-part-10kv", date(2026, 6, 1))
    usage = Usage(tou_kwh={TouPeriod.FLAT: Decimal(10_000)}, **fields)  # type: ignore[arg-type]
    return yuan(quote(tariff, usage, billing_date=date(2026, 6, 1)))


@pytest.mark.parametrize(
    ("fields", "total"),
    [
        # energy: 10,000 × 0.651886 = 6518.86 in every case
        ({"demand_basis": DemandBasis.CAPACITY, "capacity_kva": Decimal(1000)}, "32818.86"),
        # 520 ≤ 1.05 × 500: contract × 42
        ({"max_demand_kw": Decimal(520), "contract_demand_kw": Decimal(500)}, "27518.86"),
        # exactly 525 is not above 105 %
        ({"max_demand_kw": Decimal(525), "contract_demand_kw": Decimal(500)}, "27518.86"),
        # 560: 525 × 42 + 35 × 84 = 22050 + 2940
        ({"max_demand_kw": Decimal(560), "contract_demand_kw": Decimal(500)}, "31508.86"),
        # no contract: actual 480 × 42
        ({"max_demand_kw": Decimal(480)}, "26678.86"),
        # contract exactly 40 % of 1000 kVA is allowed
        (
            {
                "max_demand_kw": Decimal(300),
                "contract_demand_kw": Decimal(400),
                "capacity_kva": Decimal(1000),
            },
            "23318.86",
        ),
    ],
)
def test_hubei_two_part_basic_charge(fields: dict[str, object], total: str) -> None:
    fields.setdefault("demand_basis", DemandBasis.MAX_DEMAND)
    assert _two_part(**fields) == total


def test_hubei_two_part_refuses_a_contract_below_40_percent_and_a_missing_basis() -> None:
    with pytest.raises(InvalidUsage, match=r"contract_demand_kw: 399 kW is below 0\.40"):
        _two_part(
            demand_basis=DemandBasis.MAX_DEMAND,
            max_demand_kw=Decimal(300),
            contract_demand_kw=Decimal(399),
            capacity_kva=Decimal(1000),
        )
    with pytest.raises(InvalidUsage, match="demand_basis"):
        _two_part(max_demand_kw=Decimal(300))


def test_hubei_two_part_power_factor_leaves_included_funds_out() -> None:
    tariff = shipped("cn-hubei-two-part-10kv", date(2026, 7, 1))
    usage = Usage(
        tou_kwh={
            TouPeriod.SHARP_PEAK: Decimal(3000),
            TouPeriod.PEAK: Decimal(10_000),
            TouPeriod.FLAT: Decimal(20_000),
            TouPeriod.VALLEY: Decimal(15_000),
        },
        demand_basis=DemandBasis.MAX_DEMAND,
        max_demand_kw=Decimal(560),
        contract_demand_kw=Decimal(500),
        reactive_kvarh=Decimal(30_000),
        power_factor_standard=Decimal("0.90"),
    )
    bill = quote(tariff, usage, billing_date=date(2026, 7, 1))
    # basic 22050 + 2940; energy 3150.00 + 8489.61 + 13037.72 + 6493.86 = 56161.19 with
    # funds 48,000 × 0.0452 = 2169.60 in it; PF 48000/√(48000² + 30000²) = 0.848 → 0.85:
    # +2.5 % of 53991.59 = 1349.78975 → 1349.79.
    pf = bill.lines[-1]
    assert (str(bill.power_factor), pf.basis_fen, pf.amount_fen) == ("0.85", 53_991_59, 1349_79)
    assert yuan(bill) == "57510.98"
