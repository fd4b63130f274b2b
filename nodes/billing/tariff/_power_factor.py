"""Power-factor adjustment (功率因数调整电费办法, (83)水电财字第215号).

The actual power factor is kWh / √(kWh² + kvarh²) rounded half up to two decimals. It is
computed with integers only: rounding half up to k/100 is the same as k/100 − 0.005 ≤ PF,
which squares into an integer comparison, so no square root is ever approximated and a
PF sitting on a rounding edge (0.895 exactly) still rounds the same way every time.

The built-in tables follow the official steps (FACTS §3d). One value is not settled: the
cap of the 0.85 table. The only code source found says −1.0 % from 0.94; the table's own
pattern (−0.15 per 0.01 after 0.90, as in the 0.90 and 0.80 tables) and the recollection
noted in FACTS give −1.10 %. We use −1.10 %; a tariff that knows better overrides the
table in its ``power_factor_tables``.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import Decimal
from math import isqrt

from powerbus.nodes.billing.tariff._model import PowerFactorStep, PowerFactorTable

__all__ = ["BUILTIN_TABLES", "adjustment_percent", "power_factor"]


def power_factor(kwh: Decimal, kvarh: Decimal) -> Decimal:
    """kWh / √(kWh² + kvarh²), rounded half up to two decimals.

    >>> power_factor(Decimal(100_000), Decimal(48_432))
    Decimal('0.90')
    >>> [str(power_factor(Decimal(100_000), Decimal(q))) for q in (60_000, 75_000)]
    ['0.86', '0.80']
    """
    if kwh < 0 or kvarh < 0:
        raise ValueError("energies must not be negative")
    # Scale to exact integers; Decimal inputs carry at most a few places in practice, but
    # scaling by the larger exponent keeps it exact whatever they carry.
    exponent = min(kwh.as_tuple().exponent, kvarh.as_tuple().exponent, 0)
    assert isinstance(exponent, int)
    scale = Decimal(10) ** -exponent
    a, b = int(kwh * scale), int(kvarh * scale)
    s = a * a + b * b
    if s == 0:
        raise ValueError("no energy: the power factor is undefined")
    # Largest odd-or-even m with m² · s ≤ (200a)²; then round(100·PF) = ⌊(m + 1) / 2⌋.
    m = isqrt((200 * a) ** 2 // s)
    return Decimal((m + 1) // 2).scaleb(-2)


def _table(standard: str, steps: list[tuple[int, str]]) -> PowerFactorTable:
    return PowerFactorTable(
        standard=Decimal(standard),
        steps=tuple(
            PowerFactorStep(power_factor=Decimal(pf).scaleb(-2), adjustment_percent=Decimal(pct))
            for pf, pct in sorted(steps)
        ),
    )


def _surcharges(standard: int) -> list[tuple[int, str]]:
    """Rows below the standard: +0.5 % per 0.01 for 20 steps (to +10 %), then +1 % per
    0.01 for 5 steps (to +15 %), then +2 % per 0.01 down to 0.00."""
    rows: list[tuple[int, str]] = []
    percent = Decimal(0)
    for pf in range(standard - 1, -1, -1):
        below = standard - pf
        percent += Decimal("0.5") if below <= 20 else Decimal(1) if below <= 25 else Decimal(2)
        rows.append((pf, str(percent)))
    return rows


def _rebates(rows: list[str], start: int) -> list[tuple[int, str]]:
    return [(start + i, "-" + r if r != "0" else "0") for i, r in enumerate(rows)]


BUILTIN_TABLES: dict[Decimal, PowerFactorTable] = {
    t.standard: t
    for t in (
        _table(
            "0.90",
            _surcharges(90) + _rebates(["0", "0.15", "0.30", "0.45", "0.60", "0.75"], 90),
        ),
        _table(
            "0.85",
            _surcharges(85)
            + _rebates(
                ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.65", "0.80", "0.95", "1.10"], 85
            ),
        ),
        _table(
            "0.80",
            _surcharges(80)
            + _rebates(
                [
                    "0",
                    "0.1",
                    "0.2",
                    "0.3",
                    "0.4",
                    "0.5",
                    "0.6",
                    "0.7",
                    "0.8",
                    "0.9",
                    "1.0",
                    "1.15",
                    "1.30",
                ],
                80,
            ),
        ),
    )
}
"""The official tables by standard; the top row of each runs to 1.00."""


def adjustment_percent(table: PowerFactorTable, factor: Decimal) -> Decimal:
    """The percent the table gives an actual power factor: the row with the highest
    power_factor not above it; below the lowest row, the lowest row.

    >>> adjustment_percent(BUILTIN_TABLES[Decimal("0.90")], Decimal("0.86"))
    Decimal('2.0')
    >>> adjustment_percent(BUILTIN_TABLES[Decimal("0.90")], Decimal("0.97"))
    Decimal('-0.75')
    """
    factors = [s.power_factor for s in table.steps]
    index = max(bisect_right(factors, factor) - 1, 0)
    return table.steps[index].adjustment_percent
