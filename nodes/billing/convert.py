"""Messages of ``powerbus.billing.v1`` to and from the engine's and the store's records.

Servicers stay thin: they call these and delegate. Money crosses as integer fen, prices as
decimal strings, kWh as doubles that :func:`kwh_from_wire` turns into exact decimals; the
one place a float becomes a quantity.

>>> date_from_proto(date_to_proto(date(2026, 10, 1)))
datetime.date(2026, 10, 1)
>>> enum_name(billing_pb2.TOU_PERIOD_SHARP_PEAK, billing_pb2.TouPeriod)
'sharp_peak'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from google.protobuf import timestamp_pb2

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.common.v1 import common_pb2
from powerbus.nodes.billing.tariff import (
    BillLine,
    DemandBasis,
    LineKind,
    Tariff,
    TouPeriod,
    Usage,
    kwh_from_wire,
    tariff_from_dict,
)

__all__ = [
    "date_from_proto",
    "date_to_proto",
    "decimal_from_proto",
    "enum_name",
    "enum_value",
    "line_from_record",
    "line_to_proto",
    "line_to_record",
    "lines_to_proto",
    "money",
    "tariff_from_proto",
    "tariff_to_proto",
    "timestamp",
    "timestamp_from_proto",
    "usage_from_quote",
]

_PREFIXES = {
    "TouPeriod": "TOU_PERIOD_",
    "CustomerClass": "CUSTOMER_CLASS_",
    "VoltageLevel": "VOLTAGE_LEVEL_",
    "TierBasis": "TIER_BASIS_",
    "DemandBasis": "DEMAND_BASIS_",
    "LineKind": "LINE_KIND_",
    "BillStatus": "BILL_STATUS_",
    "BillingRunState": "BILLING_RUN_STATE_",
}


# Generated enum classes carry Name/Value on their metaclass, which no one annotation
# covers for all of them; the helpers take ``Any`` and the callers name the enum.


def _prefix(wrapper: Any) -> str:
    return _PREFIXES[str(wrapper.DESCRIPTOR.name)]


def enum_name(value: int, wrapper: Any) -> str | None:
    """The engine's value of a proto enum number (``None`` for UNSPECIFIED)."""
    name = str(wrapper.Name(value)).removeprefix(_prefix(wrapper)).lower()
    return None if name == "unspecified" else name


def enum_value(name: str | None, wrapper: Any) -> Any:
    """The proto enum number of an engine value (``None`` is UNSPECIFIED), typed as the
    generated enum's value type."""
    return wrapper.Value(_prefix(wrapper) + (name or "unspecified").upper())


def date_to_proto(day: date) -> common_pb2.Date:
    return common_pb2.Date(year=day.year, month=day.month, day=day.day)


def date_from_proto(message: common_pb2.Date, *, field: str = "date") -> date:
    """A ``common.v1.Date``; :class:`InvalidArgument` naming ``field`` if it is no date."""
    try:
        return date(message.year, message.month, message.day)
    except ValueError as exc:
        raise InvalidArgument(field, f"not a date: {exc}") from None


def decimal_from_proto(message: common_pb2.Decimal, *, field: str) -> Decimal | None:
    """A ``common.v1.Decimal`` (``None`` when empty); :class:`InvalidArgument` otherwise."""
    if not message.value:
        return None
    try:
        value = Decimal(message.value)
    except ArithmeticError:
        raise InvalidArgument(field, f"not a decimal: {message.value!r}") from None
    if not value.is_finite():
        raise InvalidArgument(field, f"not a finite decimal: {message.value!r}")
    return value


def _decimal(value: Decimal | None) -> common_pb2.Decimal:
    return common_pb2.Decimal(value="" if value is None else str(value))


def money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(fen=fen, currency="CNY")


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf timestamp of an aware datetime (``None`` stays ``None``)."""
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=timezone.utc)
    stamp.FromDatetime(moment)
    return stamp


def timestamp_from_proto(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=timezone.utc)


def _wire_decimal(value: float) -> str:
    """A threshold double as the shortest decimal string: ``240.0`` → ``"240"``."""
    exact = Decimal(str(value))
    return str(exact.quantize(Decimal(1)) if exact == exact.to_integral_value() else exact)


def _hhmm(minute: int) -> str:
    minute = 1440 if minute == 0 else minute
    return f"{minute // 60:02d}:{minute % 60:02d}"


def tariff_from_proto(message: billing_pb2.Tariff) -> Tariff:
    """The validated tariff version a PutTariff carries; :class:`InvalidTariff` (an
    INVALID_ARGUMENT) names the field and the reason."""
    data: dict[str, Any] = {
        "tariff_id": message.tariff_id,
        "name": message.name,
        "customer_class": enum_name(message.customer_class, billing_pb2.CustomerClass),
        "voltage_level": enum_name(message.voltage_level, billing_pb2.VoltageLevel),
        "region": message.region,
        "effective_from": date_from_proto(message.effective_from, field="effective_from"),
        "funds_included": message.funds_included,
    }
    if message.HasField("effective_to"):
        data["effective_to"] = date_from_proto(message.effective_to, field="effective_to")
    if message.energy_price.value:
        data["energy_price"] = message.energy_price.value
    if message.tier_basis:
        data["tier_basis"] = enum_name(message.tier_basis, billing_pb2.TierBasis)
    data["tiers"] = [_tier_dict(t) for t in message.tiers]
    data["tou_windows"] = [
        {
            "period": enum_name(w.period, billing_pb2.TouPeriod),
            "start": f"{w.start_minute // 60:02d}:{w.start_minute % 60:02d}",
            "end": _hhmm(w.end_minute),
            "months": list(w.months),
        }
        for w in message.tou_windows
    ]
    data["tou_rates"] = [_rate_dict(r) for r in message.tou_rates]
    if message.HasField("demand_charge"):
        d = message.demand_charge
        data["demand_charge"] = {
            key: getattr(d, key).value
            for key in (
                "demand_price",
                "capacity_price",
                "excess_threshold",
                "excess_multiplier",
                "min_contract_ratio",
            )
            if getattr(d, key).value
        }
    data["government_funds"] = [
        {"name": f.name, "price": f.price.value} for f in message.government_funds
    ]
    data["power_factor_tables"] = [
        {
            "standard": t.standard.value,
            "steps": [
                {
                    "power_factor": s.power_factor.value,
                    "adjustment_percent": s.adjustment_percent.value,
                }
                for s in t.steps
            ],
        }
        for t in message.power_factor_tables
    ]
    return tariff_from_dict(data, source="PutTariff", path="tariff")


def _tier_dict(tier: billing_pb2.Tier) -> dict[str, Any]:
    row: dict[str, Any] = {"level": tier.level, "surcharge": tier.surcharge.value}
    if tier.up_to_kwh:
        row["up_to_kwh"] = _wire_decimal(tier.up_to_kwh)
    if tier.months:
        row["months"] = list(tier.months)
    return row


def _rate_dict(rate: billing_pb2.TouRate) -> dict[str, Any]:
    row: dict[str, Any] = {"period": enum_name(rate.period, billing_pb2.TouPeriod)}
    which = rate.WhichOneof("rate")
    if which is not None:
        row[which] = getattr(rate, which).value
    if rate.meter_rate:
        row["meter_rate"] = rate.meter_rate
    return row


def tariff_to_proto(tariff: Tariff) -> billing_pb2.Tariff:
    """The ``Tariff`` message of one version."""
    message = billing_pb2.Tariff(
        tariff_id=tariff.tariff_id,
        name=tariff.name,
        customer_class=enum_value(tariff.customer_class.value, billing_pb2.CustomerClass),
        voltage_level=enum_value(tariff.voltage_level.value, billing_pb2.VoltageLevel),
        region=tariff.region,
        effective_from=date_to_proto(tariff.effective_from),
        energy_price=_decimal(tariff.energy_price),
        tier_basis=enum_value(
            tariff.tier_basis.value if tariff.tier_basis else None, billing_pb2.TierBasis
        ),
        funds_included=tariff.funds_included,
    )
    if tariff.effective_to is not None:
        message.effective_to.CopyFrom(date_to_proto(tariff.effective_to))
    for tier in tariff.tiers:
        message.tiers.add(
            level=tier.level,
            up_to_kwh=float(tier.up_to_kwh or 0),
            surcharge=_decimal(tier.surcharge),
            months=tier.months,
        )
    for window in tariff.tou_windows:
        message.tou_windows.add(
            period=enum_value(window.period.value, billing_pb2.TouPeriod),
            start_minute=window.start_minute,
            end_minute=window.end_minute,
            months=window.months,
        )
    for rate in tariff.tou_rates:
        row = message.tou_rates.add(
            period=enum_value(rate.period.value, billing_pb2.TouPeriod), meter_rate=rate.meter_rate
        )
        if rate.price is not None:
            row.price.CopyFrom(_decimal(rate.price))
        elif rate.ratio is not None:
            row.ratio.CopyFrom(_decimal(rate.ratio))
    if tariff.demand_charge is not None:
        d = tariff.demand_charge
        message.demand_charge.CopyFrom(
            billing_pb2.DemandCharge(
                demand_price=_decimal(d.demand_price),
                capacity_price=_decimal(d.capacity_price),
                excess_threshold=_decimal(d.excess_threshold),
                excess_multiplier=_decimal(d.excess_multiplier),
                min_contract_ratio=_decimal(d.min_contract_ratio),
            )
        )
    for fund in tariff.government_funds:
        message.government_funds.add(name=fund.name, price=_decimal(fund.price))
    for table in tariff.power_factor_tables:
        pf = message.power_factor_tables.add(standard=_decimal(table.standard))
        for step in table.steps:
            pf.steps.add(
                power_factor=_decimal(step.power_factor),
                adjustment_percent=_decimal(step.adjustment_percent),
            )
    return message


def usage_from_quote(request: billing_pb2.QuoteRequest) -> Usage:
    """The usage a ``QuoteRequest`` prices; negative quantities are :class:`InvalidUsage`
    once the engine checks them."""
    tou: dict[TouPeriod, Decimal] = {}
    for i, row in enumerate(request.tou_usage):
        name = enum_name(row.period, billing_pb2.TouPeriod)
        if name is None:
            raise InvalidArgument(f"tou_usage[{i}].period", "must be set")
        tou[TouPeriod(name)] = tou.get(TouPeriod(name), Decimal(0)) + _quantity(row.kwh)
    basis = enum_name(request.demand_basis, billing_pb2.DemandBasis)
    return Usage(
        kwh=_quantity(request.kwh),
        tou_kwh=tou,
        year_to_date_kwh=_quantity(request.year_to_date_kwh),
        tier_allowance_kwh=_quantity(request.tier_allowance_kwh),
        demand_basis=None if basis is None else DemandBasis(basis),
        max_demand_kw=_quantity(request.max_demand_kw),
        contract_demand_kw=_quantity(request.contract_demand_kw),
        capacity_kva=_quantity(request.capacity_kva),
        reactive_kvarh=_quantity(request.reactive_kvarh),
        power_factor_standard=decimal_from_proto(
            request.power_factor_standard, field="power_factor_standard"
        ),
    )


def _quantity(value: float) -> Decimal:
    # Negative values pass through so the engine's check names the field.
    return kwh_from_wire(value) if value >= 0 else Decimal(str(value))


def line_to_record(line: BillLine) -> dict[str, Any]:
    """A bill line as the JSON the store keeps (decimals as strings, money in fen)."""
    return {
        "kind": line.kind.value,
        "amount_fen": line.amount_fen,
        "zh": line.description_zh,
        "en": line.description_en,
        "quantity": str(line.quantity),
        "unit": line.unit,
        "unit_price": str(line.unit_price),
        "tou_period": None if line.tou_period is None else line.tou_period.value,
        "tier_level": line.tier_level,
        "basis_fen": line.basis_fen,
        "fund_name": line.fund_name,
        "informational": line.informational,
    }


def line_from_record(record: Mapping[str, Any]) -> BillLine:
    """The inverse of :func:`line_to_record`."""
    return BillLine(
        kind=LineKind(record["kind"]),
        amount_fen=int(record["amount_fen"]),
        description_zh=record["zh"],
        description_en=record["en"],
        quantity=Decimal(record["quantity"]),
        unit=record["unit"],
        unit_price=Decimal(record["unit_price"]),
        tou_period=None if record["tou_period"] is None else TouPeriod(record["tou_period"]),
        tier_level=int(record["tier_level"]),
        basis_fen=record["basis_fen"],
        fund_name=record["fund_name"],
        informational=bool(record["informational"]),
    )


def line_to_proto(line: BillLine) -> billing_pb2.BillLine:
    """A ``BillLine`` message; the description carries both languages."""
    message = billing_pb2.BillLine(
        kind=enum_value(line.kind.value, billing_pb2.LineKind),
        description=line.description,
        tou_period=enum_value(
            None if line.tou_period is None else line.tou_period.value, billing_pb2.TouPeriod
        ),
        tier_level=line.tier_level,
        # Display only: the exact quantity is in the description and in the amount.
        quantity=float(line.quantity),
        unit=line.unit,
        unit_price=_decimal(line.unit_price),
        amount=money(line.amount_fen),
        fund_name=line.fund_name,
        informational=line.informational,
    )
    if line.basis_fen is not None:
        message.basis_amount.CopyFrom(money(line.basis_fen))
    return message


def lines_to_proto(lines: Iterable[BillLine]) -> list[billing_pb2.BillLine]:
    return [line_to_proto(line) for line in lines]
