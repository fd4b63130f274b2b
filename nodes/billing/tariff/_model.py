"""One version of a tariff (电价) and its parts, shaped like ``powerbus.billing.v1.Tariff``.

Every record is a frozen dataclass and every price a :class:`~decimal.Decimal` in yuan per
unit, so a tariff is a value: two equal tariffs price every usage alike. Build one with
:func:`~powerbus.nodes.billing.tariff.tariff_from_dict` (which validates) rather than by
hand; the constructors here check nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from powerbus.nodes.billing.tariff._enums import (
    CustomerClass,
    TierBasis,
    TouPeriod,
    VoltageLevel,
)

__all__ = [
    "DemandCharge",
    "GovernmentFund",
    "PowerFactorStep",
    "PowerFactorTable",
    "Tariff",
    "Tier",
    "TouRate",
    "TouWindow",
]

MINUTES_PER_DAY = 1440


@dataclass(frozen=True, kw_only=True)
class Tier:
    """One tier of a tiered tariff: kWh up to ``up_to_kwh`` (inclusive) pay ``surcharge``
    on top of the energy or TOU price (先峰谷后阶梯). ``up_to_kwh`` is ``None`` for the top
    tier; ``months`` empty means every month (seasonal thresholds list their months)."""

    level: int
    up_to_kwh: Decimal | None
    surcharge: Decimal
    months: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TouWindow:
    """``[start_minute, end_minute)`` of local time in ``period``; an end at or before the
    start wraps past midnight (谷 23:00-07:00 is 1380 → 420, a whole day is 0 → 0)."""

    period: TouPeriod
    start_minute: int
    end_minute: int
    months: tuple[int, ...] = ()

    def minutes(self) -> range | tuple[range, range]:
        """The minutes of the day it covers, as one range or two when it wraps."""
        if self.end_minute > self.start_minute:
            return range(self.start_minute, self.end_minute)
        return (range(self.start_minute, MINUTES_PER_DAY), range(0, self.end_minute))


@dataclass(frozen=True, kw_only=True)
class TouRate:
    """The price of a TOU period: exactly one of ``price`` (yuan/kWh) or ``ratio`` (a
    multiple of the tariff's ``energy_price``, as 峰 ×1.7 is published)."""

    period: TouPeriod
    price: Decimal | None = None
    ratio: Decimal | None = None
    meter_rate: int = 0


@dataclass(frozen=True, kw_only=True)
class GovernmentFund:
    """One of the 政府性基金及附加, in yuan/kWh."""

    name: str
    price: Decimal


@dataclass(frozen=True, kw_only=True)
class DemandCharge:
    """基本电费 of a two-part tariff and the demand rules of 发改办价格〔2016〕1583号:
    demand above contract × ``excess_threshold`` costs ``excess_multiplier`` × the price,
    and contract demand may not be below capacity × ``min_contract_ratio``."""

    demand_price: Decimal
    capacity_price: Decimal
    excess_threshold: Decimal | None = None
    excess_multiplier: Decimal | None = None
    min_contract_ratio: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class PowerFactorStep:
    """A row of a 功率因数调整电费表: at ``power_factor`` (and above, up to the next row),
    ``adjustment_percent`` of basic + energy charges; negative is a rebate."""

    power_factor: Decimal
    adjustment_percent: Decimal


@dataclass(frozen=True, kw_only=True)
class PowerFactorTable:
    """The adjustment table for one standard ("0.90", "0.85", "0.80"), rows ascending."""

    standard: Decimal
    steps: tuple[PowerFactorStep, ...]


@dataclass(frozen=True, kw_only=True)
class Tariff:
    """One version of a tariff, effective on ``[effective_from, effective_to)``.

    >>> from powerbus.nodes.billing.tariff import load_shipped
    >>> beijing = load_shipped().version("cn-beijing-residential", date(2026, 5, 1))
    >>> [str(t.up_to_kwh) for t in beijing.tiers]
    ['240', '400', 'None']
    """

    tariff_id: str
    name: str
    customer_class: CustomerClass
    voltage_level: VoltageLevel
    region: str
    effective_from: date
    effective_to: date | None = None
    energy_price: Decimal | None = None
    tier_basis: TierBasis | None = None
    tiers: tuple[Tier, ...] = ()
    tou_windows: tuple[TouWindow, ...] = ()
    tou_rates: tuple[TouRate, ...] = ()
    demand_charge: DemandCharge | None = None
    government_funds: tuple[GovernmentFund, ...] = ()
    funds_included: bool = False
    power_factor_tables: tuple[PowerFactorTable, ...] = ()

    def effective_on(self, day: date) -> bool:
        """Whether this version is the one in force on ``day``."""
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    def tiers_in(self, month: int) -> tuple[Tier, ...]:
        """The tiers whose thresholds apply in ``month`` (1-12), lowest level first."""
        return tuple(t for t in self.tiers if not t.months or month in t.months)

    def windows_in(self, month: int) -> tuple[TouWindow, ...]:
        """The TOU windows that apply in ``month`` (1-12)."""
        return tuple(w for w in self.tou_windows if not w.months or month in w.months)

    def tou_price(self, period: TouPeriod) -> Decimal | None:
        """The yuan/kWh of ``period`` (a ratio resolved on ``energy_price``), or ``None``
        when the tariff does not price it."""
        for rate in self.tou_rates:
            if rate.period is period:
                if rate.price is not None:
                    return rate.price
                if rate.ratio is not None and self.energy_price is not None:
                    return self.energy_price * rate.ratio
        return None

    @property
    def is_tou(self) -> bool:
        """Whether the tariff has time-of-use periods."""
        return bool(self.tou_rates)
