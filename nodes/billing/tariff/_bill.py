"""Bills: lines that explain themselves, each rounded to the fen, and their sum.

Rounding is half up in the decimal module's sense (ROUND_HALF_UP: a half goes away from
zero, so a rebate of −0.125 yuan is −0.13), applied once per line to the exact product;
nothing is rounded before that, and a total is only ever the sum of rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from powerbus.nodes.billing.tariff._enums import LineKind, TouPeriod

__all__ = ["Bill", "BillLine", "format_decimal", "format_fen", "to_fen"]


def to_fen(yuan: Decimal | Fraction) -> int:
    """An exact amount of yuan rounded half up (away from zero) to integer fen.

    >>> to_fen(Decimal("0.125")), to_fen(Decimal("-0.125")), to_fen(Fraction(1, 3))
    (13, -13, 33)
    """
    exact = Fraction(yuan) * 100
    magnitude = (2 * abs(exact.numerator) + exact.denominator) // (2 * exact.denominator)
    return -magnitude if exact < 0 else magnitude


def format_fen(fen: int) -> str:
    """Fen as yuan with two decimals: ``-150000`` → ``"-1500.00"``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def format_decimal(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: ``Decimal("240.000")`` → ``"240"``."""
    text = format(value.normalize(), "f")
    return text


@dataclass(frozen=True, kw_only=True)
class BillLine:
    """One line of a bill, shaped like ``powerbus.billing.v1.BillLine``.

    ``amount_fen`` is ``round_half_up(quantity × unit_price × days / days_in_month)`` for
    unit lines (``days`` is ``None`` unless prorated) and ``round_half_up(basis_fen ×
    unit_price / 100)`` for percentage lines. ``informational`` lines (funds already in
    the price) explain part of other lines and are not added to the total.
    """

    kind: LineKind
    amount_fen: int
    description_zh: str
    description_en: str
    quantity: Decimal = Decimal(0)
    unit: str = "kWh"
    unit_price: Decimal = Decimal(0)
    tou_period: TouPeriod | None = None
    tier_level: int = 0
    basis_fen: int | None = None
    fund_name: str = ""
    informational: bool = False
    days: tuple[int, int] | None = None

    @property
    def description(self) -> str:
        """Both languages, for a wire field that holds one string."""
        return f"{self.description_zh} / {self.description_en}"


@dataclass(frozen=True, kw_only=True)
class Bill:
    """A priced usage: its lines, and the versions of the tariff they used.

    >>> from powerbus.nodes.billing.tariff import Usage, load_shipped, quote
    >>> t = load_shipped().version("cn-beijing-residential", date(2026, 5, 1))
    >>> bill = quote(t, Usage(kwh=Decimal(300)), billing_date=date(2026, 5, 1))
    >>> format_fen(bill.total_fen)
    '149.49'
    """

    tariff_id: str
    effective_from: date
    lines: tuple[BillLine, ...]
    kwh: Decimal
    power_factor: Decimal | None = None

    @property
    def total_fen(self) -> int:
        """The sum of the lines that count (not the informational ones)."""
        return sum(line.amount_fen for line in self.lines if not line.informational)

    def table(self, *, english: bool = False) -> str:
        """The lines as plain text, one per row, with the total last."""
        rows = []
        for line in self.lines:
            text = line.description_en if english else line.description_zh
            mark = " *" if line.informational else ""
            rows.append(f"{format_fen(line.amount_fen):>14}  {text}{mark}")
        label = "Total" if english else "合计"
        rows.append(f"{format_fen(self.total_fen):>14}  {label}")
        return "\n".join(rows)
