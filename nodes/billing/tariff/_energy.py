"""Energy lines of one tariff version: 电度电费 by TOU period, 阶梯加价 by tier, and the
government funds.

Tiers are priced the way the surcharge model of the proto reads them (先峰谷后阶梯): every
kWh at its TOU (or flat) price, then each tier's kWh at the tier's surcharge. Pricing
peak and valley kWh "split across tiers in proportion", at per-tier TOU prices (浙江's
高峰 0.568/0.618/0.868), is the same sum before rounding, since each per-tier price is the
period price plus the tier surcharge; this way needs no proportional split of kWh, so no
kWh is ever rounded, and a tier's kWh appear on one line.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from powerbus.nodes.billing.tariff._bill import BillLine, to_fen
from powerbus.nodes.billing.tariff._enums import LineKind, TierBasis, TouPeriod
from powerbus.nodes.billing.tariff._errors import InvalidUsage
from powerbus.nodes.billing.tariff._model import Tariff
from powerbus.nodes.billing.tariff._text import energy_text, fund_text, surcharge_text
from powerbus.nodes.billing.tariff._usage import MILLI, Usage

__all__ = ["energy_lines", "fund_lines", "surcharge_lines", "thresholds"]

_ZERO = Decimal(0)


def energy_lines(tariff: Tariff, usage: Usage) -> list[BillLine]:
    """One 电度电费 line per TOU period used, or one flat line."""
    if not usage.tou_kwh:
        if tariff.energy_price is None:
            raise InvalidUsage(
                "tou_kwh", f"tariff {tariff.tariff_id} has no flat price: give kWh per TOU period"
            )
        return [_energy_line(None, usage.kwh, tariff.energy_price)]
    lines = []
    for period in TouPeriod:
        kwh = usage.tou_kwh.get(period)
        if kwh is None:
            continue
        price = tariff.tou_price(period)
        if price is None:
            raise InvalidUsage(
                "tou_kwh", f"tariff {tariff.tariff_id} does not price the period {period.value}"
            )
        lines.append(_energy_line(period, kwh, price))
    return lines


def _energy_line(period: TouPeriod | None, kwh: Decimal, price: Decimal) -> BillLine:
    fen = to_fen(kwh * price)
    zh, en = energy_text(period, kwh, price, fen)
    return BillLine(
        kind=LineKind.ENERGY,
        amount_fen=fen,
        description_zh=zh,
        description_en=en,
        quantity=kwh,
        unit_price=price,
        tou_period=period,
    )


def thresholds(
    tariff: Tariff, usage: Usage, month: int, days: tuple[int, int] | None
) -> list[tuple[int, Decimal | None, Decimal]]:
    """``(level, upper threshold, surcharge)`` of the tiers of ``month``, with the
    allowance added and, for monthly tiers of a part month, prorated by days and rounded
    half up to 0.001 kWh. Annual thresholds are never prorated: year_to_date_kwh already
    places a part month on them."""
    result: list[tuple[int, Decimal | None, Decimal]] = []
    for tier in tariff.tiers_in(month):
        upper = tier.up_to_kwh
        if upper is not None:
            upper += usage.tier_allowance_kwh
            if days is not None and tariff.tier_basis is TierBasis.MONTHLY:
                upper = (upper * days[0] / days[1]).quantize(MILLI, ROUND_HALF_UP)
        result.append((tier.level, upper, tier.surcharge))
    return result


def surcharge_lines(
    tariff: Tariff, usage: Usage, month: int, days: tuple[int, int] | None
) -> list[BillLine]:
    """One 阶梯加价 line per tier with kWh in it and a surcharge above zero."""
    if not tariff.tiers:
        return []
    start = usage.year_to_date_kwh if tariff.tier_basis is TierBasis.ANNUAL else _ZERO
    end = start + usage.kwh
    lines = []
    lower = _ZERO
    for level, upper, surcharge in thresholds(tariff, usage, month, days):
        top = end if upper is None else min(end, upper)
        kwh = top - max(start, lower)
        if kwh > 0 and surcharge:
            fen = to_fen(kwh * surcharge)
            zh, en = surcharge_text(level, lower, upper, kwh, surcharge, fen)
            lines.append(
                BillLine(
                    kind=LineKind.TIER_SURCHARGE,
                    amount_fen=fen,
                    description_zh=zh,
                    description_en=en,
                    quantity=kwh,
                    unit_price=surcharge,
                    tier_level=level,
                )
            )
        if upper is not None:
            lower = upper
    return lines


def fund_lines(tariff: Tariff, usage: Usage) -> list[BillLine]:
    """One line per government fund; informational when the prices include the funds."""
    lines = []
    for fund in tariff.government_funds:
        fen = to_fen(Fraction(usage.kwh * fund.price))
        zh, en = fund_text(fund.name, usage.kwh, fund.price, fen, included=tariff.funds_included)
        lines.append(
            BillLine(
                kind=LineKind.GOVERNMENT_FUND,
                amount_fen=fen,
                description_zh=zh,
                description_en=en,
                quantity=usage.kwh,
                unit_price=fund.price,
                fund_name=fund.name,
                informational=tariff.funds_included,
            )
        )
    return lines
