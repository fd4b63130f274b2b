"""What is priced: the billing determinants of one account for one period.

Shaped like the quantities of ``powerbus.billing.v1.QuoteRequest``. Energy is priced to
0.001 kWh: :func:`kwh_from_wire` turns the wire's double into that exact decimal, the one
place a float becomes a quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from powerbus.nodes.billing.tariff._enums import DemandBasis, TouPeriod
from powerbus.nodes.billing.tariff._errors import InvalidUsage

__all__ = ["MILLI", "Usage", "kwh_from_wire"]

MILLI = Decimal("0.001")
_ZERO = Decimal(0)


def kwh_from_wire(value: float) -> Decimal:
    """A wire double as an exact decimal to 0.001 (half up): ``Decimal(str(x))`` first, so
    ``0.1`` is 0.1 and not 0.1000000000000000055511151231257827.

    >>> kwh_from_wire(1234.5678)
    Decimal('1234.568')
    """
    return Decimal(str(value)).quantize(MILLI, ROUND_HALF_UP)


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Usage of one period. ``kwh`` is the total; ``tou_kwh`` its split by TOU period (a
    TOU tariff given only ``kwh`` prices it all at its flat ``energy_price``).

    ``year_to_date_kwh`` places the period on annual tiers; ``tier_allowance_kwh`` is added
    to every threshold (e.g. +100 kWh for a household of five or more). The rest is for
    two-part tariffs and the power-factor adjustment.

    >>> Usage(tou_kwh={TouPeriod.PEAK: Decimal(200), TouPeriod.VALLEY: Decimal(100)}).total_kwh
    Decimal('300')
    """

    kwh: Decimal = _ZERO
    tou_kwh: Mapping[TouPeriod, Decimal] = field(default_factory=dict)
    year_to_date_kwh: Decimal = _ZERO
    tier_allowance_kwh: Decimal = _ZERO
    demand_basis: DemandBasis | None = None
    max_demand_kw: Decimal = _ZERO
    contract_demand_kw: Decimal = _ZERO
    capacity_kva: Decimal = _ZERO
    reactive_kvarh: Decimal = _ZERO
    power_factor_standard: Decimal | None = None

    @property
    def total_kwh(self) -> Decimal:
        """``kwh``, or the sum of ``tou_kwh`` when ``kwh`` is 0."""
        return self.kwh if self.kwh or not self.tou_kwh else sum(self.tou_kwh.values(), _ZERO)

    def checked(self) -> Usage:
        """This usage with energy quantised to 0.001 kWh; :class:`InvalidUsage` for a
        negative quantity or a TOU split that does not add up to ``kwh``."""
        for name in (
            "kwh",
            "year_to_date_kwh",
            "tier_allowance_kwh",
            "max_demand_kw",
            "contract_demand_kw",
            "capacity_kva",
            "reactive_kvarh",
        ):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise InvalidUsage(name, f"must be a decimal ≥ 0, not {value!r}")
        tou = {p: _milli(v, f"tou_kwh[{p.value}]") for p, v in self.tou_kwh.items()}
        kwh = _milli(self.kwh, "kwh")
        if tou and kwh and abs(sum(tou.values(), _ZERO) - kwh) > MILLI:
            raise InvalidUsage("tou_kwh", f"adds up to {sum(tou.values())}, not kwh {kwh}")
        if tou:
            kwh = sum(tou.values(), _ZERO)
        return Usage(
            kwh=kwh,
            tou_kwh=tou,
            year_to_date_kwh=_milli(self.year_to_date_kwh, "year_to_date_kwh"),
            tier_allowance_kwh=_milli(self.tier_allowance_kwh, "tier_allowance_kwh"),
            demand_basis=self.demand_basis,
            max_demand_kw=self.max_demand_kw,
            contract_demand_kw=self.contract_demand_kw,
            capacity_kva=self.capacity_kva,
            reactive_kvarh=_milli(self.reactive_kvarh, "reactive_kvarh"),
            power_factor_standard=self.power_factor_standard,
        )


def _milli(value: Decimal, name: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise InvalidUsage(name, f"must be a decimal ≥ 0, not {value!r}")
    return value.quantize(MILLI, ROUND_HALF_UP)
