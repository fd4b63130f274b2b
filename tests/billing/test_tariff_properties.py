"""Properties of pricing that must hold for any usage (hypothesis)."""

from __future__ import annotations

import decimal
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from tariff_helpers import shipped

from powerbus.nodes.billing.tariff import (
    Bill,
    DemandBasis,
    LineKind,
    Tariff,
    TierBasis,
    TouPeriod,
    Usage,
    bill_period,
    compile_tariff,
    load_shipped,
    power_factor,
    quote,
    to_fen,
)

EXAMPLES = settings(max_examples=60, deadline=None)
ALL = load_shipped().ids()
RESIDENTIAL = [i for i in ALL if "residential" in i]
TIERED = [i for i in ALL if shipped(i).tiers]
kwh = st.integers(0, 3_000_000).map(lambda m: Decimal(m).scaleb(-3))
months = st.integers(1, 12)


def _version(tariff_id: str, month: int) -> Tariff:
    return shipped(tariff_id, date(2026, month, 1))


def _periods(tariff: Tariff) -> list[TouPeriod]:
    return [p for p in TouPeriod if tariff.tou_price(p) is not None]


@st.composite
def usages(draw: st.DrawFn, tariff: Tariff) -> Usage:
    periods = _periods(tariff)
    fields: dict[str, object] = {"year_to_date_kwh": draw(kwh) * 2}
    if periods:
        fields["tou_kwh"] = {p: draw(kwh) for p in periods}
    else:
        fields["kwh"] = draw(kwh)
    if tariff.demand_charge is not None:
        fields["demand_basis"] = DemandBasis.MAX_DEMAND
        fields["max_demand_kw"] = Decimal(draw(st.integers(1, 5000)))
        fields["contract_demand_kw"] = Decimal(draw(st.sampled_from([0, 500, 1000])))
    return Usage(**fields)  # type: ignore[arg-type]


def _total(tariff: Tariff, usage: Usage, month: int) -> int:
    return quote(tariff, usage, billing_date=date(2026, month, 1)).total_fen


@EXAMPLES
@given(st.data(), st.sampled_from(ALL), months, kwh.filter(lambda k: k > 0))
def test_a_bill_never_decreases_when_any_usage_grows(
    data: st.DataObject, tariff_id: str, month: int, more: Decimal
) -> None:
    tariff = _version(tariff_id, month)
    usage = data.draw(usages(tariff))
    before = _total(tariff, usage, month)
    if usage.tou_kwh:
        period = data.draw(st.sampled_from(sorted(usage.tou_kwh)))
        grown = replace(usage, tou_kwh={**usage.tou_kwh, period: usage.tou_kwh[period] + more})
    else:
        grown = replace(usage, kwh=usage.kwh + more)
    assert _total(tariff, grown, month) >= before
    if tariff.demand_charge is not None:
        higher = replace(usage, max_demand_kw=usage.max_demand_kw + more)
        assert _total(tariff, higher, month) >= before


def _exact(bill: Bill) -> Decimal:
    """The bill before any rounding: Σ quantity × unit price of the lines that count."""
    return sum(
        (line.quantity * line.unit_price for line in bill.lines if not line.informational),
        Decimal(0),
    )


@EXAMPLES
@given(
    st.sampled_from(TIERED),
    months,
    st.data(),
    st.integers(1, 10_000).map(lambda m: Decimal(m).scaleb(-3)),
    st.sampled_from([Decimal(0), Decimal(100)]),
)
def test_last_kwh_of_a_tier_and_first_of_the_next_are_priced_right(
    tariff_id: str, month: int, data: st.DataObject, step: Decimal, allowance: Decimal
) -> None:
    tariff = _version(tariff_id, month)
    tiers = tariff.tiers_in(month)
    index = data.draw(st.integers(0, len(tiers) - 2))
    edge = tiers[index].up_to_kwh
    assert edge is not None
    edge += allowance
    periods = _periods(tariff)
    period = data.draw(st.sampled_from(periods)) if periods else None
    price = tariff.energy_price if period is None else tariff.tou_price(period)
    assert price is not None
    # Annual tiers: put the period's end on the edge with some kWh before it in the year.
    before = data.draw(st.integers(0, 1000)) if tariff.tier_basis is TierBasis.ANNUAL else 0

    def exact(total: Decimal) -> Decimal:
        ytd = Decimal(before)
        own = total - ytd
        usage = Usage(
            kwh=own if period is None else Decimal(0),
            tou_kwh={} if period is None else {period: own},
            year_to_date_kwh=ytd,
            tier_allowance_kwh=allowance,
        )
        return _exact(quote(tariff, usage, billing_date=date(2026, month, 1)))

    low = max(edge - step, Decimal(before))
    assert exact(edge) - exact(low) == (edge - low) * (price + tiers[index].surcharge)
    assert exact(edge + step) - exact(edge) == step * (price + tiers[index + 1].surcharge)


@EXAMPLES
@given(st.data(), st.sampled_from(ALL), months, st.booleans())
def test_each_line_is_its_own_product_rounded_and_lines_sum_to_the_total(
    data: st.DataObject, tariff_id: str, month: int, assessed: bool
) -> None:
    tariff = _version(tariff_id, month)
    usage = data.draw(usages(tariff))
    if assessed:
        usage = replace(
            usage,
            reactive_kvarh=data.draw(kwh),
            power_factor_standard=data.draw(st.sampled_from(["0.90", "0.85", "0.80"]).map(Decimal)),
        )
    bill = quote(tariff, usage, billing_date=date(2026, month, 1))
    for line in bill.lines:
        if line.kind is LineKind.POWER_FACTOR_ADJUSTMENT:
            assert line.basis_fen is not None
            assert line.amount_fen == to_fen(
                Fraction(line.basis_fen) * Fraction(line.unit_price) / 10_000
            )
        else:
            assert line.amount_fen == to_fen(line.quantity * line.unit_price)
    assert bill.total_fen == sum(line.amount_fen for line in bill.lines if not line.informational)


@EXAMPLES
@given(st.data(), st.sampled_from(ALL), months, st.integers(2, 28))
def test_a_month_billed_as_two_prorated_halves_equals_the_whole(
    data: st.DataObject, tariff_id: str, month: int, split_day: int
) -> None:
    # Documented rounding: each line of the whole becomes two rounded lines (≤ 1 fen
    # apart from the whole line), and prorated thresholds and split kWh move at most
    # 0.002 kWh between tiers; so the halves stay within 1 fen per line of the whole + 1.
    tariff = _version(tariff_id, month)
    usage = data.draw(usages(tariff))
    if tariff.demand_charge is not None:
        usage = replace(usage, demand_basis=DemandBasis.CAPACITY, capacity_kva=Decimal(800))
    start = date(2026, month, 1)
    end = (start + timedelta(days=32)).replace(day=1)
    middle = date(2026, month, split_day)
    first = replace(tariff, effective_from=date(2000, 1, 1), effective_to=middle)
    second = replace(tariff, effective_from=middle, effective_to=None)
    whole = bill_period([tariff], usage, start=start, end=end)
    halves = bill_period([first, second], usage, start=start, end=end)
    assert abs(halves.total_fen - whole.total_fen) <= len(whole.lines) + 1


@EXAMPLES
@given(st.data(), st.sampled_from(RESIDENTIAL), months, st.sampled_from([0, 100]))
def test_the_integer_engine_agrees_with_the_decimal_engine_to_the_fen(
    data: st.DataObject, tariff_id: str, month: int, allowance: int
) -> None:
    tariff = _version(tariff_id, month)
    usage = replace(data.draw(usages(tariff)), tier_allowance_kwh=Decimal(allowance))
    fast = compile_tariff(tariff, month=month, tier_allowance_kwh=Decimal(allowance))
    columns = [usage.tou_kwh[p] for p in fast.periods] if fast.periods else [usage.kwh]
    milli = [int(k * 1000) for k in columns]
    ytd = int(usage.year_to_date_kwh * 1000)
    assert fast.total_fen(milli, ytd) == _total(tariff, usage, month)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_power_factor_is_rounded_half_up_exactly(kwh_milli: int, kvarh_milli: int) -> None:
    a, b = Decimal(kwh_milli).scaleb(-3), Decimal(kvarh_milli).scaleb(-3)
    if not a and not b:
        return
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        reference = (a / (a * a + b * b).sqrt()).quantize(Decimal("0.01"), decimal.ROUND_HALF_UP)
    assert power_factor(a, b) == reference
