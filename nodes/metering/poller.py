"""The poller: interval reads of the lines this instance owns, VEE, and batched stores.

Schedule. Interval ends are the multiples of ``interval`` since the epoch (15 min by
default, down to seconds). At each end every owned line reads its meters one after
another, spread over the first ``spread`` of the interval so the lines do not all burst
at the boundary; a meter that fails with a retriable error (timeout, garbage frame,
broken connection) is read again with exponential back-off (tenacity) until half the
interval has gone, after which a read would belong to the next interval. At the interval
ending on local midnight the DL/T 645 meters' daily freeze is read as well.

What is stored, per line and interval, in one transaction under the line's fencing
token: the :class:`~powerbus.nodes.metering.line_batch.LineBatch` of the poll (register
reads, intervals from VEE, estimates, end-device events) and the
``metering.readings.received`` event. A stale owner's write is refused by the
store (:class:`~powerbus.nodes.metering.errors.StaleOwner`) and the line is dropped.

Ownership: every third of the lease TTL the poller rebalances its leases
(:class:`~powerbus.nodes.metering.ownership.LineOwnership`), so a dead instance's lines
are taken over within the TTL and the previous register read is then taken from the
database, where the old owner left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

from powerbus.adapters.meters import Acquisition, MeterError, MeterReading, ReadScope
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.backfill import Backfill
from powerbus.nodes.metering.errors import StaleOwner
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.freezes import FreezeReader
from powerbus.nodes.metering.line_batch import LineBatch, MeterState, load_states
from powerbus.nodes.metering.meters import MeterCatalog, Polled
from powerbus.nodes.metering.ownership import Lease, LineOwnership
from powerbus.nodes.metering.quality import ReadFailures, quality_report
from powerbus.nodes.metering.settlement import FREEZE_DEPTH_DAYS
from powerbus.nodes.metering.store import (
    ReadingStore,
    RegisterRecord,
    WriteResult,
)
from powerbus.nodes.metering.vee import (
    VeeConfig,
)

__all__ = ["LineResult", "Poller", "PollerSettings"]

log = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Callable[[], datetime]


@dataclass(frozen=True, kw_only=True)
class PollerSettings:
    """When and how hard the poller reads."""

    interval: timedelta = timedelta(minutes=15)
    spread: float = 0.2
    """Share of the interval a line's reads are spread over."""
    retry_window: float = 0.45
    """Share of the interval within which failed reads are retried."""
    lease_ttl: timedelta = timedelta(seconds=15)
    time_zone: str = "Asia/Shanghai"
    source: str = "metering"
    """Names the batches in ``metering.readings.received`` (the node id)."""
    freeze_readback_days: int = FREEZE_DEPTH_DAYS
    """On first contact, DL/T 645 meters' month-start freezes within this many days are
    read back (:mod:`.settlement`); 0 reads none."""


@dataclass
class LineResult:
    """What one poll of one line did (for logs and tests)."""

    gateway: str
    end: datetime
    read: int = 0
    failed: int = 0
    intervals: int = 0
    events: int = 0
    stale: bool = False


@dataclass
class _Line:
    lease: Lease
    task: asyncio.Task[None] | None = None
    states: dict[str, MeterState] = field(default_factory=dict)


class Poller:
    """Polls the owned lines until :meth:`stop`; ``poll_line`` does one line once."""

    def __init__(
        self,
        *,
        store: ReadingStore,
        catalog: MeterCatalog,
        events: MeteringEvents,
        acquisition: Acquisition,
        ownership: LineOwnership,
        backfill: Backfill | None = None,
        settings: PollerSettings | None = None,
        vee: VeeConfig | None = None,
        clock: Clock | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.events = events
        self.acquisition = acquisition
        self.ownership = ownership
        self.backfill = backfill
        self.settings = settings or PollerSettings()
        self.vee = vee or VeeConfig(time_zone=self.settings.time_zone)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        # clock seconds per real second: a simulated clock may run fast (tests), and the
        # poller's waits (spread, back-off) are in clock seconds
        self._scale = time_scale
        self._zone = ZoneInfo(self.settings.time_zone)
        self._lines: dict[str, _Line] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.results: list[LineResult] = []
        """The most recent results, newest last (bounded)."""
        self._freezes = FreezeReader(
            acquisition,
            store,
            zone=self._zone,
            readback_days=self.settings.freeze_readback_days,
            clock=self._clock,
        )
        # The lines of the active meters as of the last catalog read (at start and each
        # interval): rebalancing every few seconds must not rebuild a catalog of 100,000.
        self._gateways: list[str] = []
        # Lease work has a thread of its own: on asyncio's shared pool it queued behind
        # hundreds of lines' stores and read-back checks, and with 500 lines the node's
        # leases lapsed before their renewal ran, so every poll was refused as stale.
        self._leases: ThreadPoolExecutor | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Take lines and start the schedule."""
        self._stopping.clear()
        await self.rebalance(reload=True)
        self._tasks = [
            asyncio.create_task(self._ownership_loop(), name="metering-ownership"),
            asyncio.create_task(self._schedule_loop(), name="metering-schedule"),
        ]

    async def stop(self) -> None:
        """Stop polling, wait for the polls in progress to end, and give the lines up."""
        self._stopping.set()
        tasks = [*self._tasks, *(ln.task for ln in self._lines.values() if ln.task)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self._lines.clear()
        try:
            await self._lease_work(self.ownership.leave)
        except (PowerbusError, OSError, SQLAlchemyError) as error:
            # the leases lapse by themselves within the TTL: a stop must not fail on it
            log.warning("metering: could not give the lines up: %s", error)
        pool, self._leases = self._leases, None
        if pool is not None:
            pool.shutdown(wait=True)

    async def _lease_work(self, work: Callable[..., T], *args: object) -> T:
        if self._leases is None:
            self._leases = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering-leases")
        return await asyncio.get_running_loop().run_in_executor(self._leases, work, *args)

    @property
    def owned(self) -> list[str]:
        """Gateways this instance polls now."""
        return sorted(self._lines)

    # -- ownership ----------------------------------------------------------------------

    async def _ownership_loop(self) -> None:
        period = self.settings.lease_ttl.total_seconds() / 3
        while not self._stopping.is_set():
            await self._sleep(period)
            if self._stopping.is_set():
                return
            await self._rebalance_or_log()

    async def _rebalance_or_log(self) -> None:
        try:
            await self.rebalance()
        except (PowerbusError, OSError) as error:
            log.warning("metering: rebalancing lines failed: %s", error)
        except Exception:  # the loops must outlive a database hiccup
            log.exception("metering: rebalancing lines failed")

    async def rebalance(self, *, reload: bool = False) -> None:
        """Heartbeat, renew, shed and take lines (every third of the lease TTL), for the
        lines of the meters the catalog had at its last read (``reload``: read it now)."""
        if reload or not self._gateways:
            self._note_lines(await asyncio.to_thread(self.catalog.active))
        leases = await self._lease_work(self.ownership.rebalance, self._gateways)
        held = {lease.gateway: lease for lease in leases}
        for gateway in list(self._lines):
            if gateway not in held:
                log.info("metering: line %s is no longer ours", gateway)
                del self._lines[gateway]
        for gateway, lease in held.items():
            line = self._lines.get(gateway)
            if line is None or line.lease.token != lease.token:
                # A new holding: what another instance stored since is in the database,
                # so forget what we remembered of these meters.
                log.info("metering: polling line %s (token %d)", gateway, lease.token)
                self._lines[gateway] = _Line(lease)
            else:
                line.lease = lease

    def _note_lines(self, meters: Sequence[Polled]) -> bool:
        """Remember the lines of ``meters``; whether they changed."""
        gateways = sorted({m.gateway for m in meters})
        changed, self._gateways = gateways != self._gateways, gateways
        return changed

    # -- schedule -----------------------------------------------------------------------

    def boundary_after(self, now: datetime) -> datetime:
        """The first interval end strictly after ``now``."""
        seconds = self.settings.interval.total_seconds()
        epoch = now.timestamp()
        return datetime.fromtimestamp(
            (math.floor(epoch / seconds + 1e-9) + 1) * seconds, timezone.utc
        )

    async def _schedule_loop(self) -> None:
        while not self._stopping.is_set():
            end = self.boundary_after(self._clock())
            wait = (end - self._clock()).total_seconds()
            await self._sleep(max(wait, 0.0))
            if self._stopping.is_set():
                return
            meters = await asyncio.to_thread(self.catalog.active)
            if self._note_lines(meters):  # a meter on a new line: take it before polling
                await self._rebalance_or_log()
            by_line: dict[str, list[Polled]] = {}
            for meter in meters:
                by_line.setdefault(meter.gateway, []).append(meter)
            for gateway, line in list(self._lines.items()):
                if line.task is not None and not line.task.done():
                    log.warning("metering: %s still polling %s; skipped", gateway, end)
                    continue
                line.task = asyncio.create_task(
                    self._guarded(gateway, by_line.get(gateway, []), end),
                    name=f"metering-poll-{gateway}",
                )

    async def _guarded(self, gateway: str, meters: list[Polled], end: datetime) -> None:
        try:
            await self.poll_line(gateway, meters, end)
        except asyncio.CancelledError:
            raise
        except Exception:  # one line's failure must not end the schedule
            log.exception("metering: poll of %s at %s failed", gateway, end)

    # -- one line -----------------------------------------------------------------------

    async def poll_line(self, gateway: str, meters: Sequence[Polled], end: datetime) -> LineResult:
        """Read ``meters`` (all behind ``gateway``) for the interval ending at ``end``,
        and store what came of it."""
        result = LineResult(gateway, end)
        line = self._lines.get(gateway)
        if line is None or not meters:
            return result
        failures = ReadFailures()
        reads = await self._read_line(meters, end, failures)
        freezes, settling = await self._freezes.read(
            meters, end, reads, until=end + self.settings.interval
        )
        try:
            came_back = await asyncio.to_thread(
                self._store_line, line, meters, reads, failures, freezes, end, result
            )
            # Only once stored: month starts read back but refused (a stale token, a
            # failed write) are read back again at the next poll, not lost.
            self._freezes.settle(settling)
        except StaleOwner as stale:
            log.warning("metering: %s; no longer polling it", stale)
            self._lines.pop(gateway, None)
            result.stale = True
            came_back = []
        self.results = [*self.results[-199:], result]
        if came_back and self.backfill is not None and not result.stale:
            await self.backfill.run(came_back, line.lease, until=end)
        return result

    async def _read_line(
        self, meters: Sequence[Polled], end: datetime, failures: ReadFailures
    ) -> dict[str, MeterReading | MeterError]:
        """One pass over the line spread over ``spread`` of the interval, then retries of
        the retriable failures with back-off until ``retry_window`` of it has gone."""
        interval = self.settings.interval.total_seconds()
        units = _units(meters)
        reads: dict[str, MeterReading | MeterError] = {}
        step = interval * self.settings.spread / max(len(units), 1)
        start = self._clock()
        for index, unit in enumerate(units):
            due = start + timedelta(seconds=index * step)
            delay = (due - self._clock()).total_seconds()
            if delay > 0:
                await self._sleep(delay)
            await self._read_unit(unit, reads, failures)
        budget = max(
            interval * self.settings.retry_window - (self._clock() - end).total_seconds(), 0
        )

        def failing() -> list[list[Polled]]:
            return [u for u in units if _retriable(reads.get(u[0].meter.meter_id))]

        deadline = end + timedelta(seconds=interval * self.settings.retry_window)

        async def again() -> list[list[Polled]]:
            for unit in failing():
                if self._clock() >= deadline:
                    return []  # out of time: what still fails is estimated
                await self._read_unit(unit, reads, failures)
            return failing()

        if not failing() or budget <= 0:
            return reads
        backoff = wait_exponential(multiplier=min(interval / 30, 1.0), max=interval / 6)
        retrying = AsyncRetrying(
            stop=stop_after_delay(budget),
            wait=backoff,
            retry=retry_if_result(bool),  # some meter still fails retriably
            sleep=self._sleep,
        )
        with contextlib.suppress(RetryError):
            await self._sleep(min(interval / 30, 1.0))
            await retrying(again)
        return reads

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of the poller's clock, or until :meth:`stop`."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds / self._scale)

    async def _read_unit(
        self,
        unit: list[Polled],
        reads: dict[str, MeterReading | MeterError],
        failures: ReadFailures,
    ) -> None:
        driver = self.acquisition.driver(unit[0].spec)
        results = await driver.read_many([m.spec for m in unit], scope=ReadScope.ENERGY)
        at = self._clock()
        # One exchange per unit: a pulse terminal's failure, repeated for each of its
        # channels, is one failed read.
        if isinstance(results[0], MeterError):
            failures.add(results[0])
        for meter, got in zip(unit, results, strict=True):
            # Intervals are cut by the poller's clock (the node's, or a simulated one in
            # tests), so the read is timed by it too.
            reads[meter.meter.meter_id] = (
                # built directly: dataclasses.replace costs ten times more, per reading
                MeterReading(got.meter_id, at, got.readings, got.meter_time, got.alarms)
                if isinstance(got, MeterReading)
                else got
            )

    def _states(self, line: _Line, meters: Sequence[Polled], end: datetime) -> None:
        """Load what the database says of the meters this instance has not polled yet
        (at start, after a takeover, for a new meter), the whole line at once."""
        new = [m for m in meters if m.meter.meter_id not in line.states]
        if new:
            line.states.update(load_states(self.store, new, end, self.settings.interval))

    def _store_line(
        self,
        line: _Line,
        meters: Sequence[Polled],
        reads: dict[str, MeterReading | MeterError],
        failures: ReadFailures,
        freezes: list[RegisterRecord],
        end: datetime,
        result: LineResult,
    ) -> list[tuple[Polled, datetime]]:
        """VEE and one write for the line; returns the meters that answered again after
        a silence, with the first interval end they missed (for backfill)."""
        interval = self.settings.interval
        batch = LineBatch(interval=interval, vee=self.vee, registers=list(freezes))
        self._states(line, meters, end)
        for meter in meters:
            meter_id = meter.meter.meter_id
            batch.add(meter, line.states[meter_id], reads.get(meter_id), end)
        result.read, result.failed = len(batch.answered), len(meters) - len(batch.answered)
        result.intervals = len(batch.records)
        self.store.type_ids({r.reading_type for r in batch.registers})

        quality = quality_report(
            gateway=line.lease.gateway,
            end=end,
            interval=interval,
            expected=len(meters),
            received=len(batch.answered),
            stored=len(batch.records),
            estimated=batch.estimated,
            failures=failures,
            last_good=_last_good(meters, reads),
        )

        def also(conn: Connection, _written: WriteResult) -> None:
            self.store.write_registers_in(conn, batch.registers)
            self.catalog.mark_read_in(conn, batch.answered, end)
            result.events = self.events.device_events(conn, batch.events)
            self.events.gateway_quality(conn, quality)
            if batch.records:
                self.events.readings(
                    conn,
                    message_id=f"poll/{line.lease.gateway}/{end.isoformat()}",
                    source=self.settings.source,
                    meter_ids=sorted({r.meter_id for r in batch.records}),
                    start=min(r.value.end for r in batch.records) - interval,
                    end=end,
                    accepted=batch.accepted,
                    rejected=batch.rejected,
                    estimated=batch.estimated,
                )

        self.store.write_intervals(batch.records, fence=line.lease.fence, also=also)
        line.states.update(batch.updates)
        return batch.came_back


def _units(meters: Sequence[Polled]) -> list[list[Polled]]:
    """The line's meters in reading units: the channels of one pulse terminal are one
    read, every other meter its own."""
    units: list[list[Polled]] = []
    terminals: dict[int, list[Polled]] = {}
    for meter in meters:
        if meter.meter.kind == pb.METER_KIND_PULSE_CHANNEL:
            unit = terminals.get(meter.spec.unit)
            if unit is None:
                unit = terminals[meter.spec.unit] = []
                units.append(unit)
            unit.append(meter)
        else:
            units.append([meter])
    return units


def _last_good(
    meters: Sequence[Polled], reads: dict[str, MeterReading | MeterError]
) -> list[datetime | None]:
    """When each meter last answered: in this poll, else as the catalog remembers."""
    times: list[datetime | None] = []
    for meter in meters:
        got = reads.get(meter.meter.meter_id)
        if isinstance(got, MeterReading):
            times.append(got.read_at)
        elif meter.meter.HasField("last_read_at"):
            times.append(meter.meter.last_read_at.ToDatetime(tzinfo=timezone.utc))
        else:
            times.append(None)
    return times


def _retriable(got: MeterReading | MeterError | None) -> bool:
    return isinstance(got, MeterError) and got.retriable
