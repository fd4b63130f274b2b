"""The rules a tariff version must satisfy before anything is priced with it.

Each rule raises :class:`InvalidTariff` naming the field (with its index, e.g.
``tou_windows[3]``) and why, so whoever edits a file or calls PutTariff can fix it without
reading this code.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from powerbus.nodes.billing.tariff._enums import TouPeriod
from powerbus.nodes.billing.tariff._errors import InvalidTariff
from powerbus.nodes.billing.tariff._model import MINUTES_PER_DAY, Tariff

__all__ = ["validate"]

_ZERO = Decimal(0)
_PF_STEP = Decimal("0.01")


class _Check:
    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path

    def fail(self, field: str, reason: str) -> InvalidTariff:
        return InvalidTariff(self.source, f"{self.path}.{field}" if self.path else field, reason)

    def not_negative(self, field: str, value: Decimal | None) -> None:
        if value is not None and value < _ZERO:
            raise self.fail(field, f"must not be negative, is {value}")


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def validate(tariff: Tariff, *, source: str, path: str = "") -> None:
    """Raises :class:`InvalidTariff` for the first rule ``tariff`` breaks."""
    check = _Check(source, path)
    if any(c.isspace() for c in tariff.tariff_id):
        raise check.fail("tariff_id", f"must not contain spaces: {tariff.tariff_id!r}")
    if tariff.effective_to is not None and tariff.effective_to <= tariff.effective_from:
        raise check.fail("effective_to", f"must be after effective_from {tariff.effective_from}")
    check.not_negative("energy_price", tariff.energy_price)
    _check_tiers(tariff, check)
    _check_tou(tariff, check)
    _check_money_parts(tariff, check)
    if not tariff.tou_rates and tariff.energy_price is None:
        raise check.fail("energy_price", "missing price: a tariff without TOU rates needs one")


def _check_tiers(tariff: Tariff, check: _Check) -> None:
    if not tariff.tiers:
        if tariff.tier_basis is not None:
            raise check.fail("tier_basis", "set, but the tariff has no tiers")
        return
    if tariff.tier_basis is None:
        raise check.fail("tier_basis", "missing: tiers need 'monthly' or 'annual'")
    for i, tier in enumerate(tariff.tiers):
        check.not_negative(f"tiers[{i}].surcharge", tier.surcharge)
    for month in range(1, 13):
        indexed = [(i, t) for i, t in enumerate(tariff.tiers) if not t.months or month in t.months]
        if not indexed:
            raise check.fail("tiers", f"no tier applies in month {month}")
        previous: Decimal = _ZERO
        for position, (i, tier) in enumerate(indexed, start=1):
            if tier.level != position:
                raise check.fail(
                    f"tiers[{i}].level",
                    f"is {tier.level} but is tier {position} of month {month}: levels go 1, 2, …",
                )
            last = position == len(indexed)
            if tier.up_to_kwh is None:
                if not last:
                    raise check.fail(
                        f"tiers[{i}].up_to_kwh", f"missing, but tier {position} is not the top tier"
                    )
            elif last:
                raise check.fail(f"tiers[{i}].up_to_kwh", "the top tier must have no threshold")
            elif tier.up_to_kwh <= previous:
                raise check.fail(
                    f"tiers[{i}].up_to_kwh",
                    f"{tier.up_to_kwh} is not above {previous}: tiers must ascend",
                )
            else:
                previous = tier.up_to_kwh


def _check_tou(tariff: Tariff, check: _Check) -> None:
    if not tariff.tou_windows and not tariff.tou_rates:
        return
    if not tariff.tou_windows:
        raise check.fail("tou_windows", "missing: tou_rates need windows")
    used: dict[TouPeriod, int] = {}
    for month in range(1, 13):
        owner = [-1] * MINUTES_PER_DAY
        for i, window in enumerate(tariff.tou_windows):
            if window.months and month not in window.months:
                continue
            used.setdefault(window.period, i)
            spans = window.minutes()
            for span in spans if isinstance(spans, tuple) else (spans,):
                for minute in span:
                    if owner[minute] >= 0:
                        raise check.fail(
                            f"tou_windows[{i}]",
                            f"overlaps tou_windows[{owner[minute]}] at {_hhmm(minute)} "
                            f"in month {month}",
                        )
                    owner[minute] = i
        if -1 in owner:
            start = owner.index(-1)
            raise check.fail("tou_windows", f"{_hhmm(start)} of month {month} is in no window")
    _check_rates(tariff, check, used)


def _check_rates(tariff: Tariff, check: _Check, used: dict[TouPeriod, int]) -> None:
    priced: set[TouPeriod] = set()
    for i, rate in enumerate(tariff.tou_rates):
        field = f"tou_rates[{i}]"
        if rate.period in priced:
            raise check.fail(f"{field}.period", f"{rate.period.value} is priced twice")
        priced.add(rate.period)
        if (rate.price is None) == (rate.ratio is None):
            raise check.fail(field, "missing price: give exactly one of price or ratio")
        check.not_negative(f"{field}.price", rate.price)
        check.not_negative(f"{field}.ratio", rate.ratio)
        if rate.ratio is not None and tariff.energy_price is None:
            raise check.fail(f"{field}.ratio", "a ratio needs the tariff's energy_price")
        if rate.period not in used:
            raise check.fail(f"{field}.period", f"{rate.period.value} is in no TOU window")
    for period, i in used.items():
        if period not in priced:
            raise check.fail("tou_rates", f"missing price for {period.value} (tou_windows[{i}])")


def _check_money_parts(tariff: Tariff, check: _Check) -> None:
    names: set[str] = set()
    for i, fund in enumerate(tariff.government_funds):
        if fund.name in names:
            raise check.fail(f"government_funds[{i}].name", f"{fund.name!r} listed twice")
        names.add(fund.name)
        check.not_negative(f"government_funds[{i}].price", fund.price)
    if tariff.funds_included and not tariff.government_funds:
        raise check.fail("funds_included", "true, but there are no government_funds")
    demand = tariff.demand_charge
    if demand is not None:
        check.not_negative("demand_charge.demand_price", demand.demand_price)
        check.not_negative("demand_charge.capacity_price", demand.capacity_price)
        if (demand.excess_threshold is None) != (demand.excess_multiplier is None):
            raise check.fail(
                "demand_charge.excess_multiplier",
                "excess_threshold and excess_multiplier go together",
            )
        if demand.excess_threshold is not None and demand.excess_threshold < 1:
            raise check.fail("demand_charge.excess_threshold", "must be at least 1")
        ratio = demand.min_contract_ratio
        if ratio is not None and not _ZERO < ratio <= 1:
            raise check.fail("demand_charge.min_contract_ratio", "must be in (0, 1]")
    _check_pf_tables(tariff, check)


def _check_pf_tables(tariff: Tariff, check: _Check) -> None:
    standards: set[Decimal] = set()
    for i, table in enumerate(tariff.power_factor_tables):
        field = f"power_factor_tables[{i}]"
        if table.standard in standards:
            raise check.fail(f"{field}.standard", f"{table.standard} listed twice")
        standards.add(table.standard)
        if not table.steps:
            raise check.fail(f"{field}.steps", "missing: a table needs rows")
        _check_ascending(check, field, (s.power_factor for s in table.steps))


def _check_ascending(check: _Check, field: str, factors: Iterable[Decimal]) -> None:
    previous = Decimal(-1)
    for j, factor in enumerate(factors):
        name = f"{field}.steps[{j}].power_factor"
        if not _ZERO <= factor <= 1 or factor != factor.quantize(_PF_STEP):
            raise check.fail(name, f"{factor} is not a power factor 0.00-1.00")
        if factor <= previous:
            raise check.fail(name, f"{factor} is not above {previous}: rows must ascend")
        previous = factor
