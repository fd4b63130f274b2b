"""基本电费 of a two-part tariff, with the demand rules of 发改办价格〔2016〕1583号.

On maximum demand with a contract (核定) demand C and an excess threshold of 105 %: if the
actual maximum demand D exceeds 1.05·C, basic = 1.05·C × price + (D − 1.05·C) × 2 × price;
otherwise C × price. Without a contract the actual maximum demand is charged. On capacity
it is kVA × the capacity price. Part months charge days / days-in-month of it.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from powerbus.nodes.billing.tariff._bill import BillLine, to_fen
from powerbus.nodes.billing.tariff._enums import DemandBasis, LineKind
from powerbus.nodes.billing.tariff._errors import InvalidUsage
from powerbus.nodes.billing.tariff._model import DemandCharge, Tariff
from powerbus.nodes.billing.tariff._text import demand_text, excess_text
from powerbus.nodes.billing.tariff._usage import Usage

__all__ = ["basic_lines", "check_contract"]


def _amount(quantity: Decimal, price: Decimal, days: tuple[int, int] | None) -> int:
    exact = Fraction(quantity * price)
    return to_fen(exact if days is None else exact * days[0] / days[1])


def check_contract(charge: DemandCharge, usage: Usage) -> None:
    """:class:`InvalidUsage` when contract demand is below capacity × the minimum ratio."""
    ratio = charge.min_contract_ratio
    contract, capacity = usage.contract_demand_kw, usage.capacity_kva
    if ratio is not None and contract and capacity and contract < capacity * ratio:
        raise InvalidUsage(
            "contract_demand_kw",
            f"{contract} kW is below {ratio} × {capacity} kVA = {capacity * ratio} kW, "
            "the least a contract demand may be (发改办价格〔2016〕1583号)",
        )


def basic_lines(tariff: Tariff, usage: Usage, days: tuple[int, int] | None) -> list[BillLine]:
    """The 基本电费 lines; none for a tariff without a demand charge."""
    charge = tariff.demand_charge
    if charge is None:
        return []
    if usage.demand_basis is DemandBasis.CAPACITY:
        if not usage.capacity_kva:
            raise InvalidUsage("capacity_kva", "a capacity basis needs the transformer kVA")
        return [_line(DemandBasis.CAPACITY, usage.capacity_kva, charge.capacity_price, days)]
    if usage.demand_basis is not DemandBasis.MAX_DEMAND:
        raise InvalidUsage(
            "demand_basis", f"tariff {tariff.tariff_id} is two-part: choose max_demand or capacity"
        )
    if not usage.contract_demand_kw and not usage.max_demand_kw:
        raise InvalidUsage("max_demand_kw", "a demand basis needs max_demand_kw or a contract")
    check_contract(charge, usage)
    if not usage.contract_demand_kw:
        return [_line(DemandBasis.MAX_DEMAND, usage.max_demand_kw, charge.demand_price, days)]
    if charge.excess_threshold is None or charge.excess_multiplier is None:
        return [_line(DemandBasis.MAX_DEMAND, usage.contract_demand_kw, charge.demand_price, days)]
    threshold = usage.contract_demand_kw * charge.excess_threshold
    if usage.max_demand_kw <= threshold:
        return [_line(DemandBasis.MAX_DEMAND, usage.contract_demand_kw, charge.demand_price, days)]
    excess = usage.max_demand_kw - threshold
    price = charge.demand_price * charge.excess_multiplier
    fen = _amount(excess, price, days)
    zh, en = excess_text(
        excess, usage.contract_demand_kw, charge.excess_threshold, price, fen, days
    )
    return [
        _line(DemandBasis.MAX_DEMAND, threshold, charge.demand_price, days),
        BillLine(
            kind=LineKind.EXCESS_DEMAND,
            amount_fen=fen,
            description_zh=zh,
            description_en=en,
            quantity=excess,
            unit="kW",
            unit_price=price,
            days=days,
        ),
    ]


def _line(
    basis: DemandBasis, quantity: Decimal, price: Decimal, days: tuple[int, int] | None
) -> BillLine:
    fen = _amount(quantity, price, days)
    zh, en = demand_text(basis, quantity, price, fen, days)
    capacity = basis is DemandBasis.CAPACITY
    return BillLine(
        kind=LineKind.CAPACITY_CHARGE if capacity else LineKind.DEMAND_CHARGE,
        amount_fen=fen,
        description_zh=zh,
        description_en=en,
        quantity=quantity,
        unit="kVA" if capacity else "kW",
        unit_price=price,
        days=days,
    )
