"""Residential billing in memory: the integer tariff engine against the Decimal one.

1,000,000 residential bills (annual tiers + peak/valley TOU: half on
``cn-zhejiang-residential-tou``, half on ``cn-jiangsu-residential-tou``) from usage held
in memory as milli-kWh, priced by :func:`compile_tariff` tables; a random sample of them
priced again by :func:`quote`, the Decimal engine that writes the explained bill lines,
which must agree to the fen (the run fails otherwise) and whose speed is the naive
baseline. Rounds are interleaved and medians reported. Writes
benchmarks/results/billing.json and billing.md.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from benchmarks.harness import environment, write_result
from powerbus.nodes.billing.tariff import (
    Tariff,
    TouPeriod,
    Usage,
    compile_tariff,
    load_shipped,
    quote,
)

BILLS = 1_000_000
SAMPLE = 20_000
ROUNDS = 3
TARGET_BILLS_PER_S = 200_000
TARIFFS = ("cn-zhejiang-residential-tou", "cn-jiangsu-residential-tou")
DAY = date(2026, 7, 1)


def _usage(rng: random.Random, count: int) -> tuple[list[int], list[int], list[int]]:
    """Peak, valley and year-to-date milli-kWh: up to 600 + 400 kWh a month and 6000 kWh
    before it, so bills land in every tier and straddle both thresholds."""
    peak = [rng.randrange(600_000) for _ in range(count)]
    valley = [rng.randrange(400_000) for _ in range(count)]
    ytd = [rng.randrange(6_000_000) for _ in range(count)]
    return peak, valley, ytd


def _integer_run(
    tariffs: list[Tariff], data: list[tuple[list[int], list[int], list[int]]]
) -> tuple[float, list[list[int]]]:
    start = time.perf_counter()
    totals = []
    for tariff, (peak, valley, ytd) in zip(tariffs, data, strict=True):
        fast = compile_tariff(tariff, month=DAY.month)
        totals.append(fast.totals_fen([peak, valley], year_to_date=ytd))
    return time.perf_counter() - start, totals


def _decimal_run(
    tariffs: list[Tariff],
    data: list[tuple[list[int], list[int], list[int]]],
    picks: list[tuple[int, int]],
) -> tuple[float, list[int]]:
    start = time.perf_counter()
    totals = []
    for which, i in picks:
        peak, valley, ytd = data[which]
        usage = Usage(
            tou_kwh={
                TouPeriod.PEAK: Decimal(peak[i]).scaleb(-3),
                TouPeriod.VALLEY: Decimal(valley[i]).scaleb(-3),
            },
            year_to_date_kwh=Decimal(ytd[i]).scaleb(-3),
        )
        totals.append(quote(tariffs[which], usage, billing_date=DAY).total_fen)
    return time.perf_counter() - start, totals


def main() -> Path:
    rng = random.Random(20261204)
    catalogue = load_shipped()
    tariffs = [catalogue.version(t, DAY) for t in TARIFFS]
    data = [_usage(rng, BILLS // len(TARIFFS)) for _ in TARIFFS]
    picks = [
        (rng.randrange(len(TARIFFS)), rng.randrange(BILLS // len(TARIFFS))) for _ in range(SAMPLE)
    ]
    fast_s: list[float] = []
    slow_s: list[float] = []
    totals: list[list[int]] = []
    for _ in range(ROUNDS):
        seconds, totals = _integer_run(tariffs, data)
        fast_s.append(seconds)
        seconds, reference = _decimal_run(tariffs, data, picks)
        slow_s.append(seconds)
    disagree = [
        (which, i, totals[which][i], ref)
        for (which, i), ref in zip(picks, reference, strict=True)
        if totals[which][i] != ref
    ]
    if disagree:
        raise AssertionError(f"{len(disagree)} of {SAMPLE} bills disagree, e.g. {disagree[:3]}")
    fast = BILLS / statistics.median(fast_s)
    slow = SAMPLE / statistics.median(slow_s)
    billed_fen = sum(sum(t) for t in totals)
    data_out = {
        "benchmark": "billing",
        "what": f"{BILLS:,} residential bills (annual tiers + peak/valley TOU, "
        f"{', '.join(TARIFFS)}) from milli-kWh usage in memory, one process; "
        "Decimal engine (quote) on a random "
        f"sample of {SAMPLE:,}; {ROUNDS} interleaved rounds, medians",
        "environment": environment(),
        "integer_engine": {
            "bills": BILLS,
            "seconds_median": round(statistics.median(fast_s), 3),
            "seconds_rounds": [round(s, 3) for s in fast_s],
            "bills_per_s": round(fast),
            "target_bills_per_s": TARGET_BILLS_PER_S,
            "meets_target": fast >= TARGET_BILLS_PER_S,
            "total_billed_fen": billed_fen,
        },
        "decimal_engine": {
            "bills": SAMPLE,
            "seconds_median": round(statistics.median(slow_s), 3),
            "bills_per_s": round(slow),
            "agree_to_the_fen": f"{SAMPLE - len(disagree)}/{SAMPLE}",
        },
        "speedup": round(fast / slow, 1),
    }
    table = "\n".join(
        [
            "| engine | bills | median s | bills/s | target |",
            "|---|---:|---:|---:|---:|",
            f"| integer tables (compile_tariff) | {BILLS:,} | {statistics.median(fast_s):.3f} "
            f"| {fast:,.0f} | {TARGET_BILLS_PER_S:,} |",
            f"| Decimal reference (quote, with lines) | {SAMPLE:,} | "
            f"{statistics.median(slow_s):.3f} | {slow:,.0f} | naive baseline |",
            "",
            f"- the sample agrees to the fen: {SAMPLE - len(disagree)}/{SAMPLE}; "
            f"integer engine {fast / slow:.1f} times the Decimal one",
        ]
    )
    return write_result("billing", data_out, table)


if __name__ == "__main__":
    print(f"wrote {main()}")
