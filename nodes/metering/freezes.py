"""What the poller reads from the DL/T 645 meters' own memory besides the interval read:
the daily freeze at the interval ending on local midnight, and on first contact with a
meter its month-start freezes (:mod:`.settlement`), so last month is billable.

A meter's month starts count as settled (not read back again by this instance) only once
the poll that read them is stored: :meth:`FreezeReader.read` says which meters it
settles, and the poller calls :meth:`FreezeReader.settle` after its write. A poll refused
for a lapsed token must not lose them; nor may a freeze lost to a timeout, which is read
again at the next poll.

Month starts are read back in the time the line has left before its next poll: a meter's
read back takes several frames (most of a second at 9,600 baud), and on a node's first
poll every DL/T 645 meter of the line wants one. Reading them all at once would make the
line skip its next polls and estimate those intervals; the meters not reached in one
poll are read back at the next (one at least each poll, so all are reached).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from powerbus.adapters.meters import Acquisition, MeterError, MeterReading
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.backfill import freeze_records
from powerbus.nodes.metering.meters import Polled
from powerbus.nodes.metering.settlement import month_start_stored, read_month_starts
from powerbus.nodes.metering.store import ReadingStore, RegisterRecord

__all__ = ["FreezeReader"]

log = logging.getLogger(__name__)


class FreezeReader:
    """Freeze reads of one poller (one node instance)."""

    def __init__(
        self,
        acquisition: Acquisition,
        store: ReadingStore,
        *,
        zone: ZoneInfo,
        readback_days: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.acquisition = acquisition
        self.store = store
        self.zone = zone
        self.readback_days = readback_days
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._settled: set[str] = set()
        self._incomplete: set[str] = set()

    def settle(self, meters: Iterable[str]) -> None:
        """The month starts of ``meters`` are stored: do not read them back again."""
        self._settled.update(meters)

    async def read(
        self,
        meters: Sequence[Polled],
        end: datetime,
        reads: Mapping[str, MeterReading | MeterError],
        *,
        until: datetime | None = None,
    ) -> tuple[list[RegisterRecord], set[str]]:
        """The freezes of the DL/T 645 meters that answered the interval read ending at
        ``end`` (total and rates, forward and reverse, as register reads at the freeze
        time), and the meters whose month starts settle once these records are stored.
        Month starts are read back only while that leaves time before ``until`` (the
        line's next poll), judged by the longest read back so far: the rest at the next
        poll."""
        records, settling = await self._month_starts(meters, end, reads, until)
        local = end.astimezone(self.zone)
        if (local.hour, local.minute, local.second) != (0, 0, 0):
            return records, settling
        for meter in _answered_dlt645(meters, reads):
            client = self.acquisition.dlt645(meter.spec.gateway)
            try:
                freeze = await client.read_daily_freeze(meter.meter.meter_id, meter.spec.address)
            except MeterError as error:
                log.info("metering: freeze of %s: %s", meter.meter.meter_id, error)
                continue
            records += freeze_records(meter.meter, freeze, self.zone)
        return records, settling

    async def _month_starts(
        self,
        meters: Sequence[Polled],
        end: datetime,
        reads: Mapping[str, MeterReading | MeterError],
        until: datetime | None,
    ) -> tuple[list[RegisterRecord], set[str]]:
        records: list[RegisterRecord] = []
        settling: set[str] = set()
        if self.readback_days <= 0:
            return records, settling
        longest: timedelta | None = None
        # Meters whose read back failed before go last: one that keeps timing out must
        # not take every poll's time from the others.
        answered = _answered_dlt645(meters, reads)
        answered.sort(key=lambda m: m.meter.meter_id in self._incomplete)
        for meter in answered:
            meter_id = meter.meter.meter_id
            if meter_id in self._settled:
                continue
            started = self._clock()
            # one read back's time to spare, for storing the poll before the next
            if until is not None and longest is not None and started + 2 * longest > until:
                break  # the rest are read back at the next poll
            # This month's freeze stored (by an earlier run, another instance): nothing to
            # read back; but not for a meter whose own read back came out incomplete,
            # whose month before may be what is missing.
            if meter_id not in self._incomplete and await asyncio.to_thread(
                month_start_stored, self.store, meter_id, end, self.zone
            ):
                settling.add(meter_id)
                continue
            read, complete = await read_month_starts(
                self.acquisition, meter.meter, meter.spec.address, meter.spec.gateway,
                now=end, zone=self.zone, depth_days=self.readback_days,
            )  # fmt: skip
            took = self._clock() - started
            longest = took if longest is None else max(longest, took)
            records += read
            if complete:
                settling.add(meter_id)
                self._incomplete.discard(meter_id)
            else:  # a timeout is no answer: read them again at the next poll
                self._incomplete.add(meter_id)
        return records, settling


def _answered_dlt645(
    meters: Sequence[Polled], reads: Mapping[str, MeterReading | MeterError]
) -> list[Polled]:
    return [
        m
        for m in meters
        if m.meter.kind == pb.METER_KIND_DLT645
        and isinstance(reads.get(m.meter.meter_id), MeterReading)
    ]
