"""Tariffs to and from plain dicts: the TOML file form, and what a servicer builds from a
``Tariff`` message for PutTariff.

A dict is one version, flat, with the proto's field names; prices and kWh thresholds are
decimal strings (a float would already have lost the exact value), TOU window ends are
``"HH:MM"`` with ``"24:00"`` for midnight, dates are :class:`datetime.date` or ISO
strings. Absent optional fields take their defaults, and :func:`tariff_to_dict` leaves
them out, so ``tariff_to_dict(tariff_from_dict(d))`` is ``d`` for any ``d`` it wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from powerbus.nodes.billing.tariff._enums import (
    CustomerClass,
    TierBasis,
    TouPeriod,
    VoltageLevel,
)
from powerbus.nodes.billing.tariff._errors import InvalidTariff
from powerbus.nodes.billing.tariff._model import (
    MINUTES_PER_DAY,
    DemandCharge,
    GovernmentFund,
    PowerFactorStep,
    PowerFactorTable,
    Tariff,
    Tier,
    TouRate,
    TouWindow,
)
from powerbus.nodes.billing.tariff._validate import validate

__all__ = ["tariff_from_dict", "tariff_to_dict"]

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


class _Reader:
    """Reads one dict, turning every problem into an :class:`InvalidTariff` with a path."""

    def __init__(self, data: object, source: str, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidTariff(source, path or "(top)", "must be a table")
        self.data: Mapping[str, Any] = data
        self.source = source
        self.path = path
        self.used: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, reason: str) -> InvalidTariff:
        return InvalidTariff(self.source, self.field(key), reason)

    def raw(self, key: str, *, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.fail(key, "missing")
            return None
        return self.data[key]

    def text(self, key: str, *, required: bool = True) -> str:
        value = self.raw(key, required=required)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        return value

    def decimal(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        # bool is an int: refuse it explicitly; floats are refused because 0.1 is inexact.
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(key, f'must be a decimal string such as "0.4883", not {value!r}')
        try:
            number = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise self.fail(key, f"not a decimal: {value!r}") from None
        if not number.is_finite():
            raise self.fail(key, f"not a finite decimal: {value!r}")
        return number

    def integer(self, key: str, *, default: int) -> int:
        value = self.raw(key, required=False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key, required=False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}")
        return value

    def day(self, key: str, *, required: bool) -> date | None:
        value = self.raw(key, required=required)
        if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(key, f"must be a date such as 2026-01-01, not {value!r}")

    def enum(self, key: str, kind: type[E], *, required: bool = True) -> E | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise self.fail(key, f"{value!r} is not one of {allowed}") from None

    def months(self) -> tuple[int, ...]:
        value = self.raw("months", required=False)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
            isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12 for m in value
        ):
            raise self.fail("months", f"must be a list of months 1-12, not {value!r}")
        if len(set(value)) != len(value):
            raise self.fail("months", f"lists a month twice: {value!r}")
        return tuple(value)

    def minute(self, key: str) -> int:
        value = self.text(key)
        hours, sep, minutes = value.partition(":")
        if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
            raise self.fail(key, f'must be a time "HH:MM", not {value!r}')
        total = int(hours) * 60 + int(minutes)
        if int(minutes) >= 60 or total > MINUTES_PER_DAY:
            raise self.fail(key, f"not a time of day: {value!r}")
        return total % MINUTES_PER_DAY

    def rows(self, key: str, read: Callable[[_Reader], T]) -> tuple[T, ...]:
        value = self.raw(key, required=False)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(key, "must be a list of tables")
        return tuple(self.nested(f"{key}[{i}]", row, read) for i, row in enumerate(value))

    def nested(self, key: str, data: object, read: Callable[[_Reader], T]) -> T:
        reader = _Reader(data, self.source, self.field(key))
        result = read(reader)
        reader.done()
        return result

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown field")


def _required(reader: _Reader, key: str) -> Decimal:
    value = reader.decimal(key, required=True)
    assert value is not None  # required=True never returns None
    return value


def _tier(r: _Reader) -> Tier:
    return Tier(
        level=r.integer("level", default=0),
        up_to_kwh=r.decimal("up_to_kwh"),
        surcharge=_required(r, "surcharge"),
        months=r.months(),
    )


def _window(r: _Reader) -> TouWindow:
    period = r.enum("period", TouPeriod)
    assert period is not None
    return TouWindow(
        period=period, start_minute=r.minute("start"), end_minute=r.minute("end"), months=r.months()
    )


def _rate(r: _Reader) -> TouRate:
    period = r.enum("period", TouPeriod)
    assert period is not None
    return TouRate(
        period=period,
        price=r.decimal("price"),
        ratio=r.decimal("ratio"),
        meter_rate=r.integer("meter_rate", default=0),
    )


def _fund(r: _Reader) -> GovernmentFund:
    return GovernmentFund(name=r.text("name"), price=_required(r, "price"))


def _demand(r: _Reader) -> DemandCharge:
    return DemandCharge(
        demand_price=_required(r, "demand_price"),
        capacity_price=_required(r, "capacity_price"),
        excess_threshold=r.decimal("excess_threshold"),
        excess_multiplier=r.decimal("excess_multiplier"),
        min_contract_ratio=r.decimal("min_contract_ratio"),
    )


def _step(r: _Reader) -> PowerFactorStep:
    return PowerFactorStep(
        power_factor=_required(r, "power_factor"),
        adjustment_percent=_required(r, "adjustment_percent"),
    )


def _pf_table(r: _Reader) -> PowerFactorTable:
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
    r = _Reader(data, source, path)
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


def _put(out: dict[str, Any], key: str, value: object) -> None:
    """Sets ``key`` unless ``value`` is a default, so the dict stays minimal."""
    if value is None or value == () or value is False or (key == "meter_rate" and value == 0):
        return
    if isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, Enum):
        value = value.value
    elif isinstance(value, tuple) and key == "months":
        value = list(value)
    out[key] = value


def _row(pairs: list[tuple[str, object]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        _put(out, key, value)
    return out


def tariff_to_dict(tariff: Tariff) -> dict[str, Any]:
    """The dict form of a tariff version, the inverse of :func:`tariff_from_dict`."""
    out = _row(
        [
            ("tariff_id", tariff.tariff_id),
            ("name", tariff.name),
            ("customer_class", tariff.customer_class),
            ("voltage_level", tariff.voltage_level),
            ("region", tariff.region),
            ("effective_from", tariff.effective_from),
            ("effective_to", tariff.effective_to),
            ("energy_price", tariff.energy_price),
            ("tier_basis", tariff.tier_basis),
            ("funds_included", tariff.funds_included),
        ]
    )
    tables: list[tuple[str, list[dict[str, Any]]]] = [
        (
            "tiers",
            [
                _row(
                    [
                        ("level", t.level),
                        ("up_to_kwh", t.up_to_kwh),
                        ("surcharge", t.surcharge),
                        ("months", t.months),
                    ]
                )
                for t in tariff.tiers
            ],
        ),
        (
            "tou_windows",
            [
                _row(
                    [
                        ("period", w.period),
                        ("start", _hhmm(w.start_minute, end=False)),
                        ("end", _hhmm(w.end_minute, end=True)),
                        ("months", w.months),
                    ]
                )
                for w in tariff.tou_windows
            ],
        ),
        (
            "tou_rates",
            [
                _row(
                    [
                        ("period", r.period),
                        ("price", r.price),
                        ("ratio", r.ratio),
                        ("meter_rate", r.meter_rate),
                    ]
                )
                for r in tariff.tou_rates
            ],
        ),
        (
            "government_funds",
            [_row([("name", f.name), ("price", f.price)]) for f in tariff.government_funds],
        ),
        (
            "power_factor_tables",
            [
                {
                    "standard": str(p.standard),
                    "steps": [
                        _row(
                            [
                                ("power_factor", s.power_factor),
                                ("adjustment_percent", s.adjustment_percent),
                            ]
                        )
                        for s in p.steps
                    ],
                }
                for p in tariff.power_factor_tables
            ],
        ),
    ]
    for key, rows in tables:
        if rows:
            out[key] = rows
    if tariff.demand_charge is not None:
        d = tariff.demand_charge
        out["demand_charge"] = _row(
            [
                ("demand_price", d.demand_price),
                ("capacity_price", d.capacity_price),
                ("excess_threshold", d.excess_threshold),
                ("excess_multiplier", d.excess_multiplier),
                ("min_contract_ratio", d.min_contract_ratio),
            ]
        )
    return out
