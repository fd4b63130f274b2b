"""Tariffs to and from plain dicts: the TOML file form, and what a servicer builds from a
``Tariff`` message for PutTariff.

A dict is one version, flat, with the proto's field names; prices and kWh thresholds are
decimal strings (a float would already have lost the exact value), TOU window ends are
``"HH:MM"`` with ``"24:00"`` for midnight, dates are :class:`datetime.date` or ISO
strings. Absent optional fields take their defaults, and :func:`tariff_to_dict` leaves
them out, so ``tariff_to_dict(tariff_from_dict(d))`` is ``d`` for any ``d`` it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from powerbus.nodes.billing.tariff._enums import (
    CustomerClass,
    TierBasis,
    TouPeriod,
    VoltageLevel,
)
from powerbus.nodes.billing.tariff._model import (
    DemandCharge,
    GovernmentFund,
    PowerFactorStep,
    PowerFactorTable,
    Tariff,
    Tier,
    TouRate,
    TouWindow,
)
from powerbus.nodes.billing.tariff._reader import Reader
from powerbus.nodes.billing.tariff._validate import validate

__all__ = ["tariff_from_dict", "tariff_to_dict"]


def _required(reader: Reader, key: str) -> Decimal:
    value = reader.decimal(key, required=True)
    assert value is not None  # required=True never returns None
    return value


def _tier(r: Reader) -> Tier:
    return Tier(
        level=r.integer("level", default=0),
        up_to_kwh=r.decimal("up_to_kwh"),
        surcharge=_required(r, "surcharge"),
        months=r.months(),
    )


def _window(r: Reader) -> TouWindow:
    period = r.enum("period", TouPeriod)
    assert period is not None
    return TouWindow(
        period=period, start_minute=r.minute("start"), end_minute=r.minute("end"), months=r.months()
    )


def _rate(r: Reader) -> TouRate:
    period = r.enum("period", TouPeriod)
    assert period is not None
    return TouRate(
        period=period,
        price=r.decimal("price"),
        ratio=r.decimal("ratio"),
        meter_rate=r.integer("meter_rate", default=0),
    )


def _fund(r: Reader) -> GovernmentFund:
    return GovernmentFund(name=r.text("name"), price=_required(r, "price"))


def _demand(r: Reader) -> DemandCharge:
    return DemandCharge(
        demand_price=_required(r, "demand_price"),
        capacity_price=_required(r, "capacity_price"),
        excess_threshold=r.decimal("excess_threshold"),
        excess_multiplier=r.decimal("excess_multiplier"),
        min_contract_ratio=r.decimal("min_contract_ratio"),
    )


def _step(r: Reader) -> PowerFactorStep:
    return PowerFactorStep(
        power_factor=_required(r, "power_factor"),
        adjustment_percent=_required(r, "adjustment_percent"),
    )


def _pf_table(r: Reader) -> PowerFactorTable:
    return PowerFactorTable(standard=_required(r, "standard"), steps=r.rows("steps", _step))


def tariff_from_dict(data: Mapping[str, Any], *, source: str = "tariff", path: str = "") -> Tariff:
    """The validated tariff version ``data`` describes.

    ``source`` names where it came from (a file, ``"PutTariff"``) and ``path`` where the
    dict sits in it, for the error: :class:`InvalidTariff` names source, field and reason.

    >>> t = tariff_from_dict({"tariff_id": "demo", "name": "示例", "region": "北京",
    ...     "customer_class": "residential", "voltage_level": "below_1kv",
    ...     "effective_from": "2026-01-01", "energy_price": "0.4883"})
    >>> t.energy_price
    Decimal('0.4883')
    """
    r = Reader(data, source, path)
    customer_class = r.enum("customer_class", CustomerClass)
    voltage_level = r.enum("voltage_level", VoltageLevel)
    effective_from = r.day("effective_from", required=True)
    assert customer_class is not None and voltage_level is not None and effective_from
    demand = r.raw("demand_charge", required=False)
    tariff = Tariff(
        tariff_id=r.text("tariff_id"),
        name=r.text("name"),
        customer_class=customer_class,
        voltage_level=voltage_level,
        region=r.text("region"),
        effective_from=effective_from,
        effective_to=r.day("effective_to", required=False),
        energy_price=r.decimal("energy_price"),
        tier_basis=r.enum("tier_basis", TierBasis, required=False),
        tiers=r.rows("tiers", _tier),
        tou_windows=r.rows("tou_windows", _window),
        tou_rates=r.rows("tou_rates", _rate),
        demand_charge=None if demand is None else r.nested("demand_charge", demand, _demand),
        government_funds=r.rows("government_funds", _fund),
        funds_included=r.flag("funds_included"),
        power_factor_tables=r.rows("power_factor_tables", _pf_table),
    )
    r.done()
    validate(tariff, source=source, path=path)
    return tariff


def _hhmm(minute: int, *, end: bool) -> str:
    if end and minute == 0:
        return "24:00"
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _plain(value: object) -> Any:
    """A model value in dict form: records as dicts without their default fields, decimals
    as strings, enums as their values, tuples as lists."""
    if isinstance(value, TouWindow):
        pairs: list[tuple[str, object]] = [
            ("period", value.period),
            ("start", _hhmm(value.start_minute, end=False)),
            ("end", _hhmm(value.end_minute, end=True)),
            ("months", value.months),
        ]
    elif is_dataclass(value) and not isinstance(value, type):
        pairs = [(f.name, getattr(value, f.name)) for f in fields(value)]
    elif isinstance(value, Decimal):
        return str(value)
    elif isinstance(value, Enum):
        return value.value
    elif isinstance(value, tuple):
        return [_plain(v) for v in value]
    else:
        return value
    # Defaults are left out so the dict stays minimal and reads back to the same record.
    return {
        key: _plain(v)
        for key, v in pairs
        if not (v is None or v == () or v is False or (key == "meter_rate" and v == 0))
    }


def tariff_to_dict(tariff: Tariff) -> dict[str, Any]:
    """The dict form of a tariff version, the inverse of :func:`tariff_from_dict`."""
    result: dict[str, Any] = _plain(tariff)
    return result
