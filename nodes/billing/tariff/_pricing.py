"""Pricing: usage and a tariff in, a :class:`Bill` out. The reference engine: every
product is an exact Decimal (or Fraction, once days divide it) and rounded once, per line.

A period that is a whole calendar month under one version is priced as it is. A part month
(move-in, move-out) or a month in which a new version takes effect is priced in segments,
one per version, each charged for its days: energy split by days (to 0.001 kWh, the last
segment taking the remainder so nothing is lost), monthly thresholds and basic charges
scaled by days / days-in-month. The power-factor adjustment is worked out once, on the
whole period.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from powerbus.nodes.billing.tariff._bill import Bill, BillLine, to_fen
from powerbus.nodes.billing.tariff._demand import basic_lines
from powerbus.nodes.billing.tariff._energy import energy_lines, fund_lines, surcharge_lines
from powerbus.nodes.billing.tariff._enums import LineKind
from powerbus.nodes.billing.tariff._errors import InvalidUsage, TariffNotFound
from powerbus.nodes.billing.tariff._model import Tariff
from powerbus.nodes.billing.tariff._power_factor import (
    BUILTIN_TABLES,
    adjustment_percent,
    power_factor,
)
from powerbus.nodes.billing.tariff._text import power_factor_text
from powerbus.nodes.billing.tariff._usage import MILLI, Usage

__all__ = ["bill_period", "quote"]

_PF_BASE = {
    LineKind.ENERGY,
    LineKind.TIER_SURCHARGE,
    LineKind.DEMAND_CHARGE,
    LineKind.CAPACITY_CHARGE,
    LineKind.EXCESS_DEMAND,
}


def quote(tariff: Tariff, usage: Usage, *, billing_date: date) -> Bill:
    """Prices a whole month of ``usage`` under one tariff version; ``billing_date`` picks
    the season and the TOU windows of its month.

    >>> from powerbus.nodes.billing.tariff import load_shipped
    >>> zj = load_shipped().version("cn-zhejiang-residential", date(2026, 12, 1))
    >>> quote(zj, Usage(kwh=Decimal(240), year_to_date_kwh=Decimal(2760)),
    ...       billing_date=date(2026, 12, 1)).total_fen
    14112
    """
    checked = usage.checked()
    lines = _segment(tariff, checked, billing_date.month, None)
    return _finish(tariff, checked, lines)


def bill_period(versions: Sequence[Tariff], usage: Usage, *, start: date, end: date) -> Bill:
    """Prices ``usage`` of ``[start, end)``, a calendar month or part of one, under the
    versions of one tariff (oldest first), prorating by days where the period is not one
    whole month under one version.

    :class:`InvalidUsage` when the period is empty or spans two months,
    :class:`TariffNotFound` when a day of it has no version in force.
    """
    checked = usage.checked()
    month_days = calendar.monthrange(start.year, start.month)[1]
    next_month = start.replace(day=1) + timedelta(days=month_days)
    if not start < end <= next_month:
        raise InvalidUsage("period", f"[{start}, {end}) is not a non-empty part of one month")
    segments = _segments(versions, start, end)
    whole = start.day == 1 and end == next_month and len(segments) == 1
    period_days = (end - start).days
    lines: list[BillLine] = []
    done = Decimal(0)
    done_tou: dict[object, Decimal] = {}
    for i, (tariff, first, days) in enumerate(segments):
        last = i == len(segments) - 1
        part = _share(checked, days, period_days, last, done, done_tou)
        seg_lines = _segment(tariff, part, start.month, None if whole else (days, month_days))
        if len(segments) > 1:
            seg_lines = _label(seg_lines, first, first + timedelta(days=days))
        lines += seg_lines
        done += part.kwh
    return _finish(segments[-1][0], checked, lines)


def _segments(versions: Sequence[Tariff], start: date, end: date) -> list[tuple[Tariff, date, int]]:
    """(version, first day, days) for each run of days under one version."""
    runs: list[tuple[Tariff, date, int]] = []
    day = start
    while day < end:
        tariff = next((v for v in reversed(versions) if v.effective_from <= day), None)
        if tariff is None or not tariff.effective_on(day):
            name = versions[0].tariff_id if versions else "(none)"
            raise TariffNotFound(f"tariff {name!r} has no version in force on {day}")
        if runs and runs[-1][0] is tariff:
            runs[-1] = (tariff, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((tariff, day, 1))
        day += timedelta(days=1)
    return runs


def _share(
    usage: Usage,
    days: int,
    period_days: int,
    last: bool,
    done: Decimal,
    done_tou: dict[object, Decimal],
) -> Usage:
    """The part of ``usage`` that falls in a segment of ``days``, by days; the last
    segment takes what the others left, so the parts add up exactly."""

    def part(total: Decimal, key: object) -> Decimal:
        already = done_tou.get(key, Decimal(0))
        value = (
            total - already if last else (total * days / period_days).quantize(MILLI, ROUND_HALF_UP)
        )
        done_tou[key] = already + value
        return value

    tou = {p: part(v, p) for p, v in usage.tou_kwh.items()}
    kwh = sum(tou.values(), Decimal(0)) if tou else part(usage.kwh, "kwh")
    return replace(usage, kwh=kwh, tou_kwh=tou, year_to_date_kwh=usage.year_to_date_kwh + done)


def _label(lines: list[BillLine], first: date, end: date) -> list[BillLine]:
    span = f"{first}–{end - timedelta(days=1)}"
    return [
        replace(
            line,
            description_zh=f"[{span}] {line.description_zh}",
            description_en=f"[{span}] {line.description_en}",
        )
        for line in lines
    ]


def _segment(
    tariff: Tariff, usage: Usage, month: int, days: tuple[int, int] | None
) -> list[BillLine]:
    return [
        *basic_lines(tariff, usage, days),
        *energy_lines(tariff, usage),
        *surcharge_lines(tariff, usage, month, days),
        *fund_lines(tariff, usage),
    ]


def _finish(tariff: Tariff, usage: Usage, lines: list[BillLine]) -> Bill:
    factor = None
    standard = usage.power_factor_standard
    if standard is not None and (usage.kwh or usage.reactive_kvarh):
        factor = power_factor(usage.kwh, usage.reactive_kvarh)
        lines.append(_power_factor_line(tariff, standard, factor, lines))
    return Bill(
        tariff_id=tariff.tariff_id,
        effective_from=tariff.effective_from,
        lines=tuple(lines),
        kwh=usage.kwh,
        power_factor=factor,
    )


def _power_factor_line(
    tariff: Tariff, standard: Decimal, factor: Decimal, lines: list[BillLine]
) -> BillLine:
    table = next((t for t in tariff.power_factor_tables if t.standard == standard), None)
    table = table or BUILTIN_TABLES.get(standard)
    if table is None:
        known = ", ".join(str(s) for s in sorted(BUILTIN_TABLES))
        raise InvalidUsage("power_factor_standard", f"{standard} is not one of {known}")
    # Funds are outside the adjustment: added funds never enter the base, included ones
    # are taken back out of the energy lines that carry them.
    basis = sum(line.amount_fen for line in lines if line.kind in _PF_BASE) - sum(
        line.amount_fen
        for line in lines
        if line.kind is LineKind.GOVERNMENT_FUND and line.informational
    )
    percent = adjustment_percent(table, factor)
    fen = to_fen(Fraction(basis, 100) * Fraction(percent) / 100)
    zh, en = power_factor_text(factor, standard, percent, basis, fen)
    return BillLine(
        kind=LineKind.POWER_FACTOR_ADJUSTMENT,
        amount_fen=fen,
        description_zh=zh,
        description_en=en,
        unit="%",
        unit_price=percent,
        basis_fen=basis,
    )
