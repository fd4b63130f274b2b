"""Metering backfill: a day-long line cut read back from the meters' own records.

The farm (``powerbus sim meters --lines dlt645``, its own process, real time) has two
DL/T 645 lines at 9,600 baud with 200 meters each, as on the poll benchmark's farm (a
round takes about a quarter of an hour: the line is the limit). Each meter keeps 10 days
of 15-minute load-profile records. The store (SQLite, the node's default) holds what the
poller would have stored while the lines were cut for the last 24 hours: 96 intervals a
meter, ESTIMATED (the register step spread evenly, rule GAP). Then the node's
``Backfill`` runs for both lines at once, each under its own line lease, as the node
runs it when the meters answer again: it reads each meter's records of the gap (six
records a frame, the most a 200-byte frame holds) and stores them as VALID, superseding
the estimates.

Per line: the gap's length over the backfill's wall time (target at least 20x real
time), and that wall time over the line's frame time during it (wire time at 11 bits a
byte plus turnaround, as the farm reports it): the physical limit. Every round checks
that each meter's 96 estimates were superseded by measured values and nothing failed.
A line of fewer meters is faster in proportion (it is one serial line): the time per
meter says what a line of any size gets.

Writes benchmarks/results/metering_backfill.json and metering_backfill.md.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import environment, write_result
from benchmarks.meter_farm import farm_process, farm_request, line_busy_seconds
from powerbus.adapters.meters import Acquisition, LineConfig, MeterSpec, load_meters
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.lifecycle import run_event_loop
from powerbus.nodes.metering.backfill import Backfill
from powerbus.nodes.metering.meters import MeterCatalog, Polled, meter_from_spec
from powerbus.nodes.metering.ownership import LineOwnership
from powerbus.nodes.metering.store import FORWARD_DELTA_KWH, IntervalRecord, ReadingStore
from powerbus.nodes.metering.vee import EstimationMethod, IntervalValue, QualityCode, VeeRule

LINES = 2
METERS_PER_LINE = 200
BAUD = 9600
GAP = timedelta(hours=24)
INTERVAL = timedelta(minutes=15)
ROUNDS = 1
TARGET_SPEED = 20.0
ESTIMATE_WH = 1
"""The estimates' value: never what a meter measures (0.01 kWh steps), so every one of
them must be superseded (an equal value would be left alone)."""


def gap_ends(now: datetime) -> list[datetime]:
    """The interval ends of the last ``GAP`` before ``now``."""
    last = datetime.fromtimestamp(
        now.timestamp() // INTERVAL.total_seconds() * INTERVAL.total_seconds(), now.tzinfo
    )
    count = int(GAP / INTERVAL)
    return [last - INTERVAL * (count - 1 - i) for i in range(count)]


def estimates(specs: list[MeterSpec], ends: list[datetime]) -> list[IntervalRecord]:
    """What the poller stored for the gap: the register step spread evenly."""
    gap = [
        IntervalValue(
            end,
            ESTIMATE_WH,
            QualityCode.ESTIMATED,
            VeeRule.GAP,
            EstimationMethod.LINEAR_INTERPOLATION,
        )
        for end in ends
    ]
    return [IntervalRecord(s.meter_id, FORWARD_DELTA_KWH, v) for s in specs for v in gap]


LineFigures = dict[str, Any]


async def backfill_round(specs: list[MeterSpec], control: str, db: Path) -> list[LineFigures]:
    """Estimates for the last day, then every line's backfill at once; per-line figures."""
    engine = create_engine(f"sqlite:///{db}")
    try:
        store = ReadingStore(engine)
        store.migrate()
        MeterCatalog(engine).put_many([meter_from_spec(s, interval=INTERVAL) for s in specs])
        now = datetime.fromisoformat(str(farm_request(control, {"op": "now"})["now"]))
        ends = gap_ends(now)
        await asyncio.to_thread(store.write_intervals, estimates(specs, ends))
        ownership = LineOwnership(engine, instance_id="bench", ttl=timedelta(hours=1))
        lines: dict[str, list[Polled]] = {}
        for s in specs:
            polled = Polled(meter_from_spec(s, interval=INTERVAL), s)
            lines.setdefault(polled.gateway, []).append(polled)
        before = line_busy_seconds(control)
        async with Acquisition(config=LineConfig()) as acquisition:
            backfill = Backfill(store=store, acquisition=acquisition, interval=INTERVAL)

            async def line(gateway: str, meters: list[Polled]) -> LineFigures:
                lease = ownership.acquire(gateway)
                assert lease is not None, f"line {gateway} is held by another instance"
                started = time.perf_counter()
                results = await backfill.run([(m, ends[0]) for m in meters], lease, until=ends[-1])
                wall = time.perf_counter() - started
                failed = [r for r in results if r.error or r.superseded != len(ends)]
                assert not failed, f"backfill of {gateway} left estimates or failed: {failed[:3]}"
                return {
                    "gateway": gateway,
                    "meters": len(results),
                    "records": sum(r.records for r in results),
                    "superseded": sum(r.superseded for r in results),
                    "wall_s": round(wall, 2),
                    "speed_x_real_time": round(GAP.total_seconds() / wall, 1),
                    "s_per_meter": round(wall / len(results), 3),
                }

            per_line = await asyncio.gather(*(line(g, m) for g, m in lines.items()))
        after = line_busy_seconds(control)
        for figures in per_line:
            gateway = figures["gateway"]
            wire = after[gateway] - before.get(gateway, 0.0)
            figures["line_wire_s"] = round(wire, 2)
            figures["ratio_to_wire"] = round(figures["wall_s"] / wire, 3)
        return per_line
    finally:
        engine.dispose()


def main() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="powerbus-backfill-bench-"))
    farm = farm_process(
        directory,
        "--meters", str(LINES * METERS_PER_LINE), "--gateways", str(LINES),
        "--lines", "dlt645", "--baud", str(BAUD),
    )  # fmt: skip
    rounds: list[list[LineFigures]] = []
    try:
        state = farm.wait_ready(timeout=120)
        specs = load_meters(str(state["meters_file"]))
        control = str(state["control"])
        for n in range(ROUNDS):
            rounds.append(
                run_event_loop(backfill_round(specs, control, directory / f"round-{n}.db"))
            )
    finally:
        farm.stop()
    lines = [line for r in rounds for line in r]
    speed = statistics.median(line["speed_x_real_time"] for line in lines)
    slowest = min(line["speed_x_real_time"] for line in lines)
    wall = statistics.median(line["wall_s"] for line in lines)
    wire = statistics.median(line["line_wire_s"] for line in lines)
    ratio = statistics.median(line["ratio_to_wire"] for line in lines)
    per_meter = statistics.median(line["s_per_meter"] for line in lines)
    data: dict[str, object] = {
        "benchmark": "metering_backfill",
        "what": f"backfill of a {GAP.total_seconds() / 3600:.0f} h cut on {LINES} DL/T 645 "
        f"lines of {METERS_PER_LINE} meters at {BAUD} baud at once: load-profile read-back, "
        "estimates superseded in SQLite",
        "environment": environment(),
        "rounds": rounds,
        "results": {
            "gap_h": GAP.total_seconds() / 3600,
            "meters_per_line": METERS_PER_LINE,
            "line_wall_s": wall,
            "line_wire_s": wire,
            "ratio_to_wire": ratio,
            "speed_x_real_time": speed,
            "slowest_line_speed_x_real_time": slowest,
            "s_per_meter_day": per_meter,
        },
        "targets": {
            "speed_x_real_time": {"target": f">= {TARGET_SPEED}", "met": slowest >= TARGET_SPEED},
        },
    }
    table = "\n".join(
        [
            f"# Metering backfill: a {GAP.total_seconds() / 3600:.0f} h cut, {LINES} DL/T 645 "
            f"lines x {METERS_PER_LINE} meters, {BAUD} baud",
            "",
            "| figure | value | target |",
            "|---|---|---|",
            f"| a line's backfill, wall time | {wall:.1f} s | |",
            f"| its frame time on the line (physical limit) | {wire:.1f} s | |",
            f"| ratio to the physical limit | {ratio:.3f} | |",
            f"| speed, median line | {speed:.0f}x real time | |",
            f"| speed, slowest line of {len(lines)} | {slowest:.0f}x real "
            f"time | >= {TARGET_SPEED:.0f}x |",
            f"| per meter and day of gap | {per_meter:.2f} s | |",
        ]
    )
    return write_result("metering_backfill", data, table)


if __name__ == "__main__":
    print(f"wrote {main()}")
