"""Late fees (电费违约金) on overdue bills, as data and pure arithmetic.

供电营业规则: counted from the day after the due date up to the day of payment, each day
on the overdue amount; residential customers 1‰ a day; other customers 2‰ a day on the
current year's arrears and 3‰ a day on arrears carried over from earlier years; summed
day by day; a late fee under 1 yuan is charged as 1 yuan (FACTS §3f).

Our reading of "carried over": an amount belongs to the year it fell due; its overdue days
in that year run at the current-year rate and its days in any later year at the
cross-year rate. The fee of one bill is ``round_half_up(amount × Σ daily rates)``, then the
1-yuan minimum; the rules are a :class:`LateFeeRule` table, so a province that differs is
a data change.

>>> from datetime import date
>>> late_fee(10000, due=date(2026, 11, 15), as_of=date(2026, 11, 25), rule=RESIDENTIAL)
LateFee(days=10, fen=100)
>>> late_fee(1_000_000, due=date(2026, 12, 20), as_of=date(2027, 1, 5),
...          rule=NON_RESIDENTIAL)  # 11 days at 2‰ + 5 days at 3‰ of 10,000.00 yuan
LateFee(days=16, fen=37000)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from powerbus.nodes.billing.tariff import CustomerClass, to_fen

__all__ = ["NON_RESIDENTIAL", "RESIDENTIAL", "LateFee", "LateFeeRule", "late_fee", "rule_for"]


@dataclass(frozen=True, kw_only=True)
class LateFeeRule:
    """Daily late-fee rates as fractions (``0.001`` is 1‰) and the minimum fee."""

    current_year_rate: Decimal
    """Per day on an amount that fell due this calendar year."""
    cross_year_rate: Decimal
    """Per day, in a later year, on an amount that fell due in an earlier one."""
    minimum_fen: int = 100


RESIDENTIAL = LateFeeRule(current_year_rate=Decimal("0.001"), cross_year_rate=Decimal("0.001"))
NON_RESIDENTIAL = LateFeeRule(current_year_rate=Decimal("0.002"), cross_year_rate=Decimal("0.003"))

RULES: dict[CustomerClass, LateFeeRule] = {
    CustomerClass.RESIDENTIAL: RESIDENTIAL,
    CustomerClass.INDUSTRY_COMMERCE: NON_RESIDENTIAL,
    CustomerClass.LARGE_INDUSTRY: NON_RESIDENTIAL,
    CustomerClass.AGRICULTURE: NON_RESIDENTIAL,
}


def rule_for(customer_class: CustomerClass) -> LateFeeRule:
    """The late-fee rule of a customer class."""
    return RULES[customer_class]


@dataclass(frozen=True)
class LateFee:
    """Days past the due date on the day asked about, and the fee then, in fen."""

    days: int
    fen: int


def late_fee(amount_fen: int, *, due: date, as_of: date, rule: LateFeeRule) -> LateFee:
    """The late fee on ``amount_fen`` overdue since ``due``, counted up to ``as_of``.

    Nothing is due on or before the due date itself, nor on nothing owed:

    >>> late_fee(10000, due=date(2026, 11, 15), as_of=date(2026, 11, 15), rule=RESIDENTIAL)
    LateFee(days=0, fen=0)
    """
    days = (as_of - due).days
    if days <= 0 or amount_fen <= 0:
        return LateFee(max(days, 0), 0)
    # Days in the due date's year run at one rate, days in later years at the other.
    year_end = date(due.year, 12, 31)
    current_days = min(days, (year_end - due).days)
    cross_days = days - current_days
    rate = rule.current_year_rate * current_days + rule.cross_year_rate * cross_days
    fen = to_fen(Decimal(amount_fen) / 100 * rate)
    return LateFee(days, max(fen, rule.minimum_fen))
