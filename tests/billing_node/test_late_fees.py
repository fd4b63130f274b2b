"""Late fees (违约金) worked by hand: 供电营业规则 as FACTS §3f gives it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from powerbus.nodes.billing.arrears import (
    NON_RESIDENTIAL,
    RESIDENTIAL,
    LateFee,
    LateFeeRule,
    late_fee,
    rule_for,
)
from powerbus.nodes.billing.tariff import CustomerClass


@pytest.mark.parametrize(
    ("amount_fen", "due", "as_of", "rule", "expected"),
    [
        # 123.45 yuan, 10 days at 1‰: 1.2345 → 1.23 yuan.
        (12345, date(2026, 11, 15), date(2026, 11, 25), RESIDENTIAL, LateFee(10, 123)),
        # 500.00 yuan, 45 days at 1‰: 22.50 yuan; a residential bill has no cross-year rate.
        (50000, date(2026, 12, 15), date(2027, 1, 29), RESIDENTIAL, LateFee(45, 2250)),
        # 50.00 yuan, 10 days at 1‰: 0.50 yuan, under the 1-yuan minimum.
        (5000, date(2026, 11, 15), date(2026, 11, 25), RESIDENTIAL, LateFee(10, 100)),
        # 10,000.00 yuan non-residential, 30 days at 2‰: 600.00 yuan.
        (1_000_000, date(2026, 10, 15), date(2026, 11, 14), NON_RESIDENTIAL, LateFee(30, 60000)),
        # 10,000.00 yuan due 20 Dec: 11 days of 2026 at 2‰ + 5 days of 2027 at 3‰ = 370.00.
        (1_000_000, date(2026, 12, 20), date(2027, 1, 5), NON_RESIDENTIAL, LateFee(16, 37000)),
        # 333.33 yuan, 7 days at 2‰: 4.66662 → 4.67 yuan (half up).
        (33333, date(2026, 3, 1), date(2026, 3, 8), NON_RESIDENTIAL, LateFee(7, 467)),
        # Not yet overdue: the due date itself and before cost nothing.
        (12345, date(2026, 11, 15), date(2026, 11, 15), RESIDENTIAL, LateFee(0, 0)),
        (12345, date(2026, 11, 15), date(2026, 11, 1), RESIDENTIAL, LateFee(0, 0)),
        # Nothing owed, nothing charged (no minimum on zero).
        (0, date(2026, 11, 15), date(2026, 12, 15), RESIDENTIAL, LateFee(30, 0)),
    ],
)
def test_late_fees_worked_by_hand(amount_fen, due, as_of, rule, expected):
    assert late_fee(amount_fen, due=due, as_of=as_of, rule=rule) == expected


def test_rules_are_data_by_customer_class():
    assert rule_for(CustomerClass.RESIDENTIAL) is RESIDENTIAL
    assert rule_for(CustomerClass.INDUSTRY_COMMERCE) is NON_RESIDENTIAL
    assert rule_for(CustomerClass.AGRICULTURE).cross_year_rate == Decimal("0.003")
    province = LateFeeRule(current_year_rate=Decimal("0.0005"), cross_year_rate=Decimal("0.001"))
    assert (
        late_fee(1_000_000, due=date(2026, 1, 1), as_of=date(2026, 1, 3), rule=province).fen == 1000
    )
