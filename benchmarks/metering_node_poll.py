"""The metering node's own poll path over the same farm: what a reading costs the node.

``Acquisition.read_all`` (``metering_poll.poll``) is only the reading. The node also runs
VEE on each register step, builds the store's records, writes one transaction per line
(intervals, registers, last-read marks, events) and remembers each meter's state. This
drives the node's real ``Poller`` in process, every line at once with no spread, against
a SQLite store in a temporary directory, for consecutive 15-minute interval ends:

- the first poll also loads each meter's last register read and value from the database
  (what a start or a takeover costs, once per meter);
- the following polls are the steady state: per reading, this process's CPU time (the
  event loop and the store threads together) over the poll.

Used by ``benchmarks.metering_poll`` so both figures come from one run on one farm.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from powerbus.adapters.meters import Acquisition, LineConfig, MeterSpec
from powerbus.bus.kernel.database import create_engine
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.journal import DeviceEvents
from powerbus.nodes.metering.meters import MeterCatalog, Polled, meter_from_spec
from powerbus.nodes.metering.ownership import LineOwnership
from powerbus.nodes.metering.poller import Poller, PollerSettings
from powerbus.nodes.metering.store import ReadingStore

__all__ = ["node_polls"]

INTERVAL = timedelta(minutes=15)


async def node_polls(meters: list[MeterSpec], directory: Path, *, rounds: int) -> dict[str, object]:
    """One first poll and ``rounds`` steady polls; CPU µs per reading of each."""
    db = directory / "metering-bench.db"
    db.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{db}")
    now = [datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)]
    try:
        store = ReadingStore(engine)
        store.migrate()
        catalog = MeterCatalog(engine)
        catalog.put_many([meter_from_spec(s, interval=INTERVAL) for s in meters])
        async with Acquisition(config=LineConfig()) as acquisition:
            poller = Poller(
                store=store,
                catalog=catalog,
                events=MeteringEvents(DeviceEvents(engine), None),
                acquisition=acquisition,
                ownership=LineOwnership(
                    engine, instance_id="bench", ttl=timedelta(days=1), clock=lambda: now[0]
                ),
                settings=PollerSettings(
                    interval=INTERVAL,
                    lease_ttl=timedelta(days=1),
                    spread=0.0,
                    freeze_readback_days=0,
                ),
                clock=lambda: now[0],
            )
            await poller.rebalance(reload=True)
            polls = []
            try:
                for _ in range(rounds + 1):
                    polls.append(await _poll(poller, catalog, now[0]))
                    now[0] += INTERVAL
            finally:
                await poller.stop()
    finally:
        engine.dispose()
    steady = [p["cpu_us_per_reading"] for p in polls[1:]]
    return {
        "polls": polls,
        "first_poll_cpu_us_per_reading": polls[0]["cpu_us_per_reading"],
        "cpu_us_per_reading": statistics.median(steady),
    }


async def _poll(poller: Poller, catalog: MeterCatalog, end: datetime) -> dict[str, float]:
    by_line: dict[str, list[Polled]] = defaultdict(list)
    for meter in await asyncio.to_thread(catalog.active):
        by_line[meter.gateway].append(meter)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results = await asyncio.gather(
        *(poller.poll_line(gateway, line, end) for gateway, line in by_line.items())
    )
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    readings = sum(r.read for r in results)
    return {
        "wall_s": round(wall, 3),
        "readings": readings,
        "intervals": sum(r.intervals for r in results),
        "cpu_us_per_reading": round(cpu / max(readings, 1) * 1e6, 1),
    }
