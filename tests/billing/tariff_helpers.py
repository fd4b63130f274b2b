"""Shared helpers of the tariff engine tests: shipped tariffs and quick quoting."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from powerbus.nodes.billing.tariff import Bill, Tariff, TouPeriod, Usage, load_shipped, quote


def shipped(tariff_id: str, day: date = date(2026, 5, 1)) -> Tariff:
    return load_shipped().version(tariff_id, day)


def yuan(bill: Bill) -> str:
    """The total as the yuan string a hand calculation gives, e.g. ``"149.49"``."""
    sign = "-" if bill.total_fen < 0 else ""
    return f"{sign}{abs(bill.total_fen) // 100}.{abs(bill.total_fen) % 100:02d}"


def quote_kwh(tariff_id: str, kwh: str, *, month: int = 5, **extra: object) -> Bill:
    tariff = shipped(tariff_id, date(2026, month, 1))
    usage = Usage(kwh=Decimal(kwh), **extra)  # type: ignore[arg-type]
    return quote(tariff, usage, billing_date=date(2026, month, 1))


def quote_tou(tariff_id: str, month: int = 5, ytd: str = "0", **kwh: str) -> Bill:
    tariff = shipped(tariff_id, date(2026, month, 1))
    usage = Usage(
        tou_kwh={TouPeriod(k): Decimal(v) for k, v in kwh.items()},
        year_to_date_kwh=Decimal(ytd),
    )
    return quote(tariff, usage, billing_date=date(2026, month, 1))
