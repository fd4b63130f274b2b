"""The metering core: readings stored per second and VEE throughput.

Store: fresh days of 15-minute forward-energy intervals for METERS meters (one
``write_intervals`` call per day, i.e. per batch of METERS × 96 values, under a fencing
token as the node writes them), timed from the records in to the commit, on PostgreSQL
through COPY into the monthly-partitioned table and, side by side as the naive baseline,
the same rows as SQLAlchemy Core executemany INSERTs on the same server; then on a SQLite
file. Rounds are interleaved and medians reported. PostgreSQL comes from
POWERBUS_BENCH_PG_URL, else POWERBUS_TEST_PG_URL, else the local server; each run works
in a schema of its own and drops it.

VEE: one local day of 15-minute intervals for VEE_METERS meters (a few gaps, a spike, a
negative value, so the rules and estimation do real work), and the same from register
reads with a rollover. Writes benchmarks/results/metering_store.json and .md.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from benchmarks.harness import environment, postgres_schema, write_result
from powerbus.bus.kernel.database import create_engine, write_transaction
from powerbus.nodes.metering.ownership import LineOwnership
from powerbus.nodes.metering.store import FORWARD_DELTA_KWH, IntervalRecord, ReadingStore
from powerbus.nodes.metering.store._tables import intervals
from powerbus.nodes.metering.store._writer import interval_row
from powerbus.nodes.metering.vee import (
    IntervalRead,
    IntervalValue,
    MeterSpec,
    RegisterRead,
    run_vee,
)

METERS = 2_000  # × 96 intervals = 192,000 values a batch
ROUNDS = 5
VEE_METERS = 5_000
TARGET_PG_PER_S = 200_000
T0 = datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)  # local midnight, Asia/Shanghai
Q = timedelta(minutes=15)


def _day(day: int, meters: int = METERS) -> list[IntervalRecord]:
    base = T0 + timedelta(days=day)
    return [
        IntervalRecord(f"M{m:06d}", FORWARD_DELTA_KWH, IntervalValue(base + Q * (k + 1), 50 + k))
        for m in range(meters)
        for k in range(96)
    ]


def _store_rounds(url: str, *, baseline: bool) -> tuple[list[float], list[float]]:
    """Seconds per batch through the store (and through plain executemany if asked)."""
    engine = create_engine(url)
    try:
        store = ReadingStore(engine)
        store.migrate()
        lease = LineOwnership(engine, instance_id="bench").acquire("gw-bench")
        assert lease is not None
        store.write_intervals(_day(-1), fence=lease.fence)  # reading types, partitions, warm-up
        ours: list[float] = []
        naive: list[float] = []
        for r in range(ROUNDS):
            batch = _day(2 * r)
            start = time.perf_counter()
            result = store.write_intervals(batch, fence=lease.fence)
            ours.append(time.perf_counter() - start)
            assert result.inserted == len(batch), result
            if baseline:
                naive.append(_executemany(store, engine, _day(2 * r + 1)))
        return ours, naive
    finally:
        engine.dispose()


def _executemany(store: ReadingStore, engine: sa.Engine, batch: list[IntervalRecord]) -> float:
    """The straightforward way: Core INSERT of the same rows, executemany."""
    type_id = store.type_ids([FORWARD_DELTA_KWH])[FORWARD_DELTA_KWH]
    names = [c.name for c in intervals.columns]
    start = time.perf_counter()
    rows = [dict(zip(names, interval_row(r, type_id, 1), strict=True)) for r in batch]
    with write_transaction(engine) as conn:
        conn.execute(intervals.insert(), rows)
    return time.perf_counter() - start


def _vee_inputs(rng: random.Random) -> list[tuple[MeterSpec, list[IntervalRead]]]:
    out = []
    for m in range(VEE_METERS):
        values = [rng.randrange(20, 400) for _ in range(96)]
        for _ in range(3):
            values[rng.randrange(96)] = -1  # becomes a gap
        values[rng.randrange(96)] = 5_000  # a spike (and over max demand on some)
        values[rng.randrange(96)] = -30  # negative consumption
        reads = [IntervalRead(T0 + Q * (k + 1), v) for k, v in enumerate(values) if v != -1]
        out.append((MeterSpec(meter_id=f"M{m}", max_demand_w=rng.choice([8_000, 30_000])), reads))
    return out


def _register_inputs(rng: random.Random) -> list[tuple[MeterSpec, list[RegisterRead]]]:
    out = []
    modulus = 100_000_000  # a 999999.99-style register, in Wh
    for m in range(VEE_METERS):
        value = modulus - rng.randrange(1, 20_000)
        reads = [RegisterRead(T0, value)]
        for k in range(1, 97):
            value = (value + rng.randrange(0, 400)) % modulus
            if rng.random() > 0.02:  # some reads missing
                reads.append(RegisterRead(T0 + Q * k, value))
        spec = MeterSpec(meter_id=f"R{m}", rollover_wh=modulus, max_demand_w=30_000)
        out.append((spec, reads))
    return out


def _vee_seconds(run: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    findings = run()
    return time.perf_counter() - start, findings


def main() -> Path:
    rng = random.Random(20261204)
    load_before = os.getloadavg()
    with postgres_schema() as pg_url:
        pg, naive = _store_rounds(pg_url, baseline=True)
    with tempfile.TemporaryDirectory() as tmp:
        lite, _ = _store_rounds(f"sqlite:///{Path(tmp) / 'metering.db'}", baseline=False)
    per_batch = METERS * 96
    pg_rate, naive_rate, lite_rate = (per_batch / statistics.median(s) for s in (pg, naive, lite))

    interval_inputs = _vee_inputs(rng)
    register_inputs = _register_inputs(rng)
    end = T0 + timedelta(days=1)
    vee_i: list[float] = []
    vee_r: list[float] = []
    counts = (0, 0)
    for _ in range(3):
        si, fi = _vee_seconds(
            lambda: sum(len(run_vee(s, T0, end, intervals=r).findings) for s, r in interval_inputs)
        )
        sr, fr = _vee_seconds(
            lambda: sum(len(run_vee(s, T0, end, registers=r).findings) for s, r in register_inputs)
        )
        vee_i.append(si)
        vee_r.append(sr)
        counts = (fi, fr)
    vi, vr = statistics.median(vee_i), statistics.median(vee_r)

    data = {
        "benchmark": "metering_store",
        "what": f"store: {ROUNDS} interleaved rounds of one write_intervals batch of "
        f"{METERS:,} meters × 96 intervals ({per_batch:,} values) under a fencing token, "
        "records in to commit, medians; VEE: one local day of 15-min data for "
        f"{VEE_METERS:,} meters, 3 rounds, medians",
        "environment": environment(),
        # The machine and its PostgreSQL server are shared: a busy neighbour shows here
        # and in the spread of the rounds.
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "store": {
            "postgresql_copy_values_per_s": round(pg_rate),
            "postgresql_copy_seconds": [round(s, 3) for s in pg],
            "postgresql_copy_best_values_per_s": round(per_batch / min(pg)),
            "target_postgresql_values_per_s": TARGET_PG_PER_S,
            "meets_target": pg_rate >= TARGET_PG_PER_S,
            "postgresql_executemany_values_per_s": round(naive_rate),
            "postgresql_executemany_seconds": [round(s, 3) for s in naive],
            "copy_speedup": round(pg_rate / naive_rate, 1),
            "sqlite_values_per_s": round(lite_rate),
            "sqlite_seconds": [round(s, 3) for s in lite],
        },
        "vee": {
            "interval_meter_days_per_s": round(VEE_METERS / vi),
            "interval_values_per_s": round(VEE_METERS * 96 / vi),
            "interval_findings": counts[0],
            "register_meter_days_per_s": round(VEE_METERS / vr),
            "register_values_per_s": round(VEE_METERS * 96 / vr),
            "register_findings": counts[1],
        },
    }
    table = "\n".join(
        [
            "| what | values/s | median s | target |",
            "|---|---:|---:|---:|",
            f"| store, PostgreSQL, COPY into monthly partitions | {pg_rate:,.0f} "
            f"| {statistics.median(pg):.3f} | {TARGET_PG_PER_S:,} |",
            f"| store, PostgreSQL, Core executemany INSERT | {naive_rate:,.0f} "
            f"| {statistics.median(naive):.3f} | naive baseline |",
            f"| store, SQLite file, executemany | {lite_rate:,.0f} "
            f"| {statistics.median(lite):.3f} | – |",
            f"| VEE, intervals ({VEE_METERS:,} meter-days) | {VEE_METERS * 96 / vi:,.0f} "
            f"| {vi:.3f} | – |",
            f"| VEE, from registers with rollover | {VEE_METERS * 96 / vr:,.0f} | {vr:.3f} | – |",
            "",
            f"- PostgreSQL COPY rounds: {', '.join(f'{per_batch / x:,.0f}' for x in pg)} "
            f"values/s; 1-min load average {load_before[0]:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after (2 shared cores)",
            f"- batches of {per_batch:,} values ({METERS:,} meters × 96); COPY "
            f"{pg_rate / naive_rate:.1f} times executemany; VEE "
            f"{VEE_METERS / vi:,.0f} meter-days/s from intervals, "
            f"{VEE_METERS / vr:,.0f} from registers",
        ]
    )
    return write_result("metering_store", data, table)


if __name__ == "__main__":
    print(f"wrote {main()}")
