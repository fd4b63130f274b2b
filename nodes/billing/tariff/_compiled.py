"""A tariff version compiled to integers, for pricing millions of residential bills.

Every price becomes an integer count of 10⁻ˢ yuan/kWh (s = the most decimal places of any
price, so nothing is rounded) and every kWh an integer count of milli-kWh. A line is then
``(milli_kwh × price + half) // 10^(s+1)`` fen: the exact product rounded half up, the same
figure the Decimal engine computes, with no Decimal and no function call per line. Thresholds
(and a household allowance) are folded into the tables at compile time.

It covers what residential bills use: flat or TOU energy, monthly or annual tiers, funds
added on top. Two-part tariffs and power-factor adjustment stay with :func:`quote`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from powerbus.nodes.billing.tariff._enums import TierBasis, TouPeriod
from powerbus.nodes.billing.tariff._errors import InvalidUsage
from powerbus.nodes.billing.tariff._model import Tariff

__all__ = ["CompiledTariff", "compile_tariff"]

_THOUSAND = Decimal(1000)


@dataclass(frozen=True, kw_only=True)
class CompiledTariff:
    """Integer tables of one tariff version for one month (the season and windows are
    fixed by then). Usage columns are milli-kWh in the order of ``periods`` (one column,
    the flat energy, when ``periods`` is empty).

    >>> from datetime import date
    >>> from powerbus.nodes.billing.tariff import load_shipped
    >>> zj = load_shipped().version("cn-zhejiang-residential-tou", date(2026, 12, 1))
    >>> fast = compile_tariff(zj, month=12)
    >>> fast.periods
    (<TouPeriod.PEAK: 'peak'>, <TouPeriod.VALLEY: 'valley'>)
    >>> fast.totals_fen([[150_000], [90_000]], year_to_date=[2_700_000])
    [12012]
    """

    tariff_id: str
    month: int
    periods: tuple[TouPeriod, ...]
    prices: tuple[int, ...]
    # (lower, upper or None, surcharge) in milli-kWh and scaled yuan, surcharge > 0 only.
    bands: tuple[tuple[int, int | None, int], ...]
    funds: tuple[int, ...]
    annual: bool
    divisor: int

    def total_fen(self, kwh_milli: Sequence[int], year_to_date_milli: int = 0) -> int:
        """The total of one bill, in fen."""
        return self.totals_fen([[k] for k in kwh_milli], year_to_date=[year_to_date_milli])[0]

    def totals_fen(
        self, columns: Sequence[Sequence[int]], *, year_to_date: Sequence[int] | None = None
    ) -> list[int]:
        """The totals of many bills, in fen: ``columns[i][b]`` is bill b's milli-kWh of
        ``periods[i]``; ``year_to_date[b]`` its milli-kWh before the period (annual tiers)."""
        if len(columns) != max(len(self.periods), 1):
            raise InvalidUsage("columns", f"need one per period of {self.periods}")
        count = len(columns[0])
        ytd = year_to_date if year_to_date is not None and self.annual else [0] * count
        if len(columns) == 2:
            return self._two(columns[0], columns[1], ytd)
        rows = zip(*columns, strict=True)
        return [self._one(row, y) for row, y in zip(rows, ytd, strict=True)]

    def _one(self, row: Sequence[int], start: int) -> int:
        divisor = self.divisor
        half = divisor // 2
        total = sum((k * p + half) // divisor for k, p in zip(row, self.prices, strict=True))
        return total + self._rest(sum(row), start)

    def _rest(self, kwh: int, start: int) -> int:
        divisor = self.divisor
        half = divisor // 2
        total = sum((kwh * f + half) // divisor for f in self.funds)
        end = start + kwh
        for lower, upper, surcharge in self.bands:
            low = start if start > lower else lower
            high = end if upper is None or end < upper else upper
            if high > low:
                total += ((high - low) * surcharge + half) // divisor
        return total

    def _two(self, first: Sequence[int], second: Sequence[int], ytd: Sequence[int]) -> list[int]:
        # The hot loop of a TOU residential run: locals only, no calls but the builtins of
        # the fallback, and the common shape (two surcharged tiers, no added funds) inline.
        divisor = self.divisor
        half = divisor // 2
        p1, p2 = self.prices
        if self.funds or len(self.bands) != 2 or self.bands[1][0] != self.bands[0][1]:
            rest = self._rest
            return [
                (a * p1 + half) // divisor + (b * p2 + half) // divisor + rest(a + b, y)
                for a, b, y in zip(first, second, ytd, strict=True)
            ]
        (t1, t2, s2), (_, _, s3) = self.bands
        assert t2 is not None
        out: list[int] = []
        append = out.append
        for a, b, y in zip(first, second, ytd, strict=True):
            total = (a * p1 + half) // divisor + (b * p2 + half) // divisor
            end = y + a + b
            if end > t1:
                if end > t2:
                    total += ((end - (y if y > t2 else t2)) * s3 + half) // divisor
                    if y < t2:
                        total += ((t2 - (y if y > t1 else t1)) * s2 + half) // divisor
                else:
                    total += ((end - (y if y > t1 else t1)) * s2 + half) // divisor
            append(total)
        return out


def _scale(values: Sequence[Decimal]) -> int:
    exponents = [v.normalize().as_tuple().exponent for v in values]
    return max([0, *(-e for e in exponents if isinstance(e, int))])


def compile_tariff(
    tariff: Tariff, *, month: int, tier_allowance_kwh: Decimal = Decimal(0)
) -> CompiledTariff:
    """``tariff`` as integer tables for bills of ``month`` (1-12).

    :class:`InvalidUsage` for what the integer engine does not price: demand charges.
    """
    if tariff.demand_charge is not None:
        raise InvalidUsage("tariff", f"{tariff.tariff_id} is two-part: price it with quote()")
    periods = tuple(p for p in TouPeriod if tariff.tou_price(p) is not None)
    raw_prices = [tariff.tou_price(p) for p in periods] if periods else [tariff.energy_price]
    prices = [p for p in raw_prices if p is not None]
    tiers = tariff.tiers_in(month)
    funds = [] if tariff.funds_included else [f.price for f in tariff.government_funds]
    scale = _scale([*prices, *(t.surcharge for t in tiers), *funds])
    unit = Decimal(10) ** scale

    def scaled(price: Decimal) -> int:
        return int(price * unit)

    bands = []
    lower = 0
    for tier in tiers:
        upper = None
        if tier.up_to_kwh is not None:
            milli = (tier.up_to_kwh + tier_allowance_kwh) * _THOUSAND
            if milli != milli.to_integral_value():
                raise InvalidUsage("tiers", f"{tariff.tariff_id}: a threshold finer than 0.001 kWh")
            upper = int(milli)
        if tier.surcharge:
            bands.append((lower, upper, scaled(tier.surcharge)))
        if upper is not None:
            lower = upper
    return CompiledTariff(
        tariff_id=tariff.tariff_id,
        month=month,
        periods=periods,
        prices=tuple(scaled(p) for p in prices),
        bands=tuple(bands),
        funds=tuple(scaled(f) for f in funds),
        annual=tariff.tier_basis is TierBasis.ANNUAL,
        divisor=10 ** (scale + 1),
    )
