"""The Chinese and English wording of bill lines, in one place so both stay in step."""

from __future__ import annotations

from decimal import Decimal

from powerbus.nodes.billing.tariff._bill import format_decimal as n
from powerbus.nodes.billing.tariff._bill import format_fen
from powerbus.nodes.billing.tariff._enums import DemandBasis, TouPeriod

__all__ = [
    "demand_text",
    "energy_text",
    "excess_text",
    "fund_text",
    "power_factor_text",
    "surcharge_text",
]

Text = tuple[str, str]


def _days(days: tuple[int, int] | None) -> Text:
    if days is None:
        return "", ""
    return f"，按 {days[0]}/{days[1]} 天", f", for {days[0]} of {days[1]} days"


def energy_text(period: TouPeriod | None, kwh: Decimal, price: Decimal, fen: int) -> Text:
    """电度电费 line: kWh of one TOU period (or all of them) × price."""
    zh_name = f"电度电费 {period.chinese}" if period else "电度电费"
    en_name = f"Energy, {period.english}" if period else "Energy"
    sums = f"{n(kwh)} kWh × {n(price)}"
    return (
        f"{zh_name} {sums} 元/kWh = {format_fen(fen)} 元",
        f"{en_name}: {sums} yuan/kWh = {format_fen(fen)} yuan",
    )


def surcharge_text(
    level: int, lower: Decimal, upper: Decimal | None, kwh: Decimal, price: Decimal, fen: int
) -> Text:
    """阶梯加价 line: the kWh of one tier × its surcharge."""
    band = f"{n(lower)}–{n(upper)} kWh" if upper is not None else f"> {n(lower)} kWh"
    sums = f"{n(kwh)} kWh × {n(price)}"
    return (
        f"第{level}档阶梯加价 ({band}) {sums} 元/kWh = {format_fen(fen)} 元",
        f"Tier {level} surcharge ({band}): {sums} yuan/kWh = {format_fen(fen)} yuan",
    )


def fund_text(name: str, kwh: Decimal, price: Decimal, fen: int, *, included: bool) -> Text:
    """政府性基金 line, saying whether it is already in the energy price."""
    sums = f"{n(kwh)} kWh × {n(price)}"
    zh_note = "（已含在电度电价中，不另计）" if included else ""
    en_note = " (included in the energy price, not added)" if included else ""
    return (
        f"政府性基金及附加 {name} {sums} 元/kWh = {format_fen(fen)} 元{zh_note}",
        f"Government fund {name}: {sums} yuan/kWh = {format_fen(fen)} yuan{en_note}",
    )


def demand_text(
    basis: DemandBasis, quantity: Decimal, price: Decimal, fen: int, days: tuple[int, int] | None
) -> Text:
    """基本电费 line on demand or capacity."""
    zh_days, en_days = _days(days)
    if basis is DemandBasis.CAPACITY:
        sums = f"{n(quantity)} kVA × {n(price)}"
        return (
            f"基本电费（按容量）{sums} 元/kVA·月{zh_days} = {format_fen(fen)} 元",
            f"Capacity charge: {sums} yuan/kVA·month{en_days} = {format_fen(fen)} yuan",
        )
    sums = f"{n(quantity)} kW × {n(price)}"
    return (
        f"基本电费（按需量）{sums} 元/kW·月{zh_days} = {format_fen(fen)} 元",
        f"Demand charge: {sums} yuan/kW·month{en_days} = {format_fen(fen)} yuan",
    )


def excess_text(
    quantity: Decimal,
    contract: Decimal,
    threshold: Decimal,
    price: Decimal,
    fen: int,
    days: tuple[int, int] | None,
) -> Text:
    """超需量 line: demand above contract × threshold at the excess price."""
    zh_days, en_days = _days(days)
    sums = f"{n(quantity)} kW × {n(price)}"
    limit = f"{n(contract)} kW × {n(threshold)}"
    return (
        f"超需量基本电费（超过核定需量 {limit} 的部分）{sums} 元/kW·月{zh_days}"
        f" = {format_fen(fen)} 元",
        f"Excess demand above contract {limit}: {sums} yuan/kW·month{en_days}"
        f" = {format_fen(fen)} yuan",
    )


def power_factor_text(
    factor: Decimal, standard: Decimal, percent: Decimal, basis_fen: int, fen: int
) -> Text:
    """力调电费 line: percent of basic + energy charges without funds."""
    sign = "+" if percent > 0 else ""
    sums = f"{sign}{n(percent)}% × {format_fen(basis_fen)}"
    return (
        f"力调电费 功率因数 {factor}（标准 {standard}）{sums} 元 = {format_fen(fen)} 元",
        f"Power-factor adjustment, PF {factor} (standard {standard}): {sums} yuan"
        f" = {format_fen(fen)} yuan",
    )
