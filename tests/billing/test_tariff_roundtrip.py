"""A random tariff survives dict form (PutTariff/GetTariff) and TOML form unchanged."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from powerbus.nodes.billing.tariff import (
    CustomerClass,
    DemandCharge,
    GovernmentFund,
    PowerFactorStep,
    PowerFactorTable,
    Tariff,
    Tier,
    TierBasis,
    TouPeriod,
    TouRate,
    TouWindow,
    VoltageLevel,
    dump_tariff_file,
    load_tariff_file,
    tariff_from_dict,
    tariff_to_dict,
)

prices = st.integers(0, 2_000_000).map(lambda n: Decimal(n).scaleb(-6))
names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1).filter(
    lambda s: s.strip() != ""
)


@st.composite
def tiers(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.integers(1, 100_000), min_size=1, max_size=3)))
    surcharges = draw(st.lists(prices, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    uppers: list[Decimal | None] = [Decimal(b) for b in bounds]
    uppers.append(None)
    return tuple(
        Tier(level=i + 1, up_to_kwh=u, surcharge=s)
        for i, (u, s) in enumerate(zip(uppers, surcharges, strict=True))
    )


@st.composite
def windows(draw: st.DrawFn) -> tuple[TouWindow, ...]:
    cuts = sorted(draw(st.sets(st.integers(0, 1439), min_size=1, max_size=6)))
    periods = draw(
        st.lists(st.sampled_from(list(TouPeriod)), min_size=len(cuts), max_size=len(cuts))
    )
    # Consecutive cuts bound the windows; the last one wraps round to the first cut.
    ends = [*cuts[1:], cuts[0]]
    return tuple(
        TouWindow(period=p, start_minute=s, end_minute=e)
        for p, s, e in zip(periods, cuts, ends, strict=True)
    )


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    start = draw(st.dates(date(2000, 1, 1), date(2040, 1, 1)))
    tou = draw(st.booleans())
    energy = draw(st.none() | prices) if tou else draw(prices)
    tou_windows = draw(windows()) if tou else ()
    used = sorted({w.period for w in tou_windows}, key=list(TouPeriod).index)
    rates = []
    for period in used:
        by_ratio = energy is not None and draw(st.booleans())
        value = draw(prices)
        rates.append(
            TouRate(
                period=period,
                price=None if by_ratio else value,
                ratio=value if by_ratio else None,
                meter_rate=draw(st.integers(0, 8)),
            )
        )
    tier_rows = draw(st.just(()) | tiers())
    funds = draw(st.lists(names, max_size=3, unique=True))
    pf_tables = draw(st.booleans())
    return Tariff(
        tariff_id=draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)),
        name=draw(names),
        customer_class=draw(st.sampled_from(list(CustomerClass))),
        voltage_level=draw(st.sampled_from(list(VoltageLevel))),
        region=draw(names),
        effective_from=start,
        effective_to=draw(st.none() | st.integers(1, 4000).map(lambda d: start + timedelta(d))),
        energy_price=energy,
        tier_basis=draw(st.sampled_from(list(TierBasis))) if tier_rows else None,
        tiers=tier_rows,
        tou_windows=tou_windows,
        tou_rates=tuple(rates),
        demand_charge=draw(
            st.none()
            | st.builds(
                DemandCharge,
                demand_price=prices,
                capacity_price=prices,
                excess_threshold=st.just(Decimal("1.05")),
                excess_multiplier=st.just(Decimal("2")),
                min_contract_ratio=st.just(Decimal("0.40")),
            )
        ),
        government_funds=tuple(GovernmentFund(name=n, price=draw(prices)) for n in funds),
        funds_included=bool(funds) and draw(st.booleans()),
        power_factor_tables=(
            PowerFactorTable(
                standard=Decimal("0.90"),
                steps=(
                    PowerFactorStep(power_factor=Decimal("0.70"), adjustment_percent=Decimal("10")),
                    PowerFactorStep(
                        power_factor=Decimal("0.95"), adjustment_percent=Decimal("-0.75")
                    ),
                ),
            ),
        )
        if pf_tables
        else (),
    )


@settings(max_examples=80, deadline=None)
@given(tariffs())
def test_a_random_tariff_round_trips_through_its_dict_form(tariff: Tariff) -> None:
    as_dict = tariff_to_dict(tariff)
    again = tariff_from_dict(as_dict, source="PutTariff")
    assert again == tariff
    assert tariff_to_dict(again) == as_dict


@settings(max_examples=40, deadline=None)
@given(tariffs())
def test_a_random_tariff_round_trips_through_a_toml_file(tariff: Tariff) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"{tariff.tariff_id}.toml"
        path.write_text(dump_tariff_file([tariff]), encoding="utf-8")
        assert load_tariff_file(path) == (tariff,)
