"""Backfill after an outage: what the meters stored themselves replaces the gap's
estimates.

When a meter answers again after a silence, the poller has already spread the register
step over the gap (the total is measured, the shape estimated). A DL/T 645 meter keeps a
15-minute load profile (负荷记录): its records from just before the gap to now are read
back, turned into interval energies (differences of the forward register) and stored
as VALID; the store supersedes the estimates (their history kept) and leaves values
stored already alone, so backfilling twice stores nothing twice. Pulse channels need no
profile: the counter kept counting, and the register step is the backfill. SDM meters
keep no history: their estimates stay, flagged.

The profile's intervals are 15 minutes, so backfill runs only when the node's interval
is 15 minutes; the meters' clocks are local time (UTC+8 on the simulator, the node's
``time_zone`` here).

>>> from datetime import datetime
>>> from powerbus.adapters.dlt645.history import ProfileRecord
>>> recs = [ProfileRecord(datetime(2026, 12, 4, 8, 0), 100.0, 0, 0, 0),
...         ProfileRecord(datetime(2026, 12, 4, 8, 15), 100.25, 0, 0, 0)]
>>> [(v.end.isoformat(), v.wh) for v in profile_intervals(recs, ZoneInfo("Asia/Shanghai"))]
[('2026-12-04T00:15:00+00:00', 250)]
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from powerbus.adapters.dlt645.history import DailyFreeze, ProfileRecord
from powerbus.adapters.meters import Acquisition, MeterError
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import kwh_to_wh
from powerbus.nodes.metering.errors import StaleOwner
from powerbus.nodes.metering.ownership import Lease
from powerbus.nodes.metering.store import (
    FORWARD_DELTA_KWH,
    IntervalRecord,
    ReadingStore,
    RegisterRecord,
)
from powerbus.nodes.metering.vee import IntervalValue

if TYPE_CHECKING:
    from powerbus.nodes.metering.meters import Polled

__all__ = ["Backfill", "BackfillResult", "freeze_records", "profile_intervals"]

log = logging.getLogger(__name__)

PROFILE_INTERVAL = timedelta(minutes=15)
_MAX_RECORDS = 96 * 7  # the simulator (and typical meters) keep at least 7 days


def freeze_type(*, forward: bool, tou: int) -> str:
    """The mRID of a daily-frozen energy register (macro period 11: daily)."""
    return f"11.0.0.1.{1 if forward else 19}.1.12.0.0.0.0.{tou}.0.0.0.3.72.0"


def freeze_records(meter: pb.Meter, freeze: DailyFreeze, zone: ZoneInfo) -> list[RegisterRecord]:
    """A daily freeze as register reads (Wh) at the freeze time."""
    at = freeze.frozen_at.replace(tzinfo=zone).astimezone(timezone.utc)
    records = []
    for forward, values in ((True, freeze.forward), (False, freeze.reverse)):
        for tou, kwh in enumerate(values):
            records.append(
                RegisterRecord(
                    meter.meter_id,
                    freeze_type(forward=forward, tou=tou),
                    at,
                    kwh_to_wh(kwh, field="freeze"),
                )
            )
    return records


def profile_intervals(records: Sequence[ProfileRecord], zone: ZoneInfo) -> list[IntervalValue]:
    """Consecutive profile records as measured interval energies (Wh), ending at the
    later record's time; a pair that is not 15 minutes apart or goes down is skipped."""
    values = []
    for a, b in itertools.pairwise(records):
        if b.stored_at - a.stored_at != PROFILE_INTERVAL:
            continue
        wh = kwh_to_wh(b.forward, field="profile") - kwh_to_wh(a.forward, field="profile")
        if wh < 0:
            continue
        end = b.stored_at.replace(tzinfo=zone).astimezone(timezone.utc)
        values.append(IntervalValue(end, wh, raw_wh=wh))
    return values


@dataclass
class BackfillResult:
    meter_id: str
    records: int = 0
    superseded: int = 0
    inserted: int = 0
    error: str = ""


class Backfill:
    """Reads back the meters' own records and stores them under the line's lease."""

    def __init__(
        self,
        *,
        store: ReadingStore,
        acquisition: Acquisition,
        interval: timedelta,
        time_zone: str = "Asia/Shanghai",
    ) -> None:
        self.store = store
        self.acquisition = acquisition
        self.enabled = interval == PROFILE_INTERVAL
        self.zone = ZoneInfo(time_zone)
        self.results: list[BackfillResult] = []

    async def run(
        self, meters: Sequence[tuple[Polled, datetime]], lease: Lease, *, until: datetime
    ) -> list[BackfillResult]:
        """Backfill each (meter, first missed interval end) up to ``until``."""
        done = []
        for meter, first in meters:
            if meter.meter.kind != pb.METER_KIND_DLT645 or not self.enabled:
                continue
            result = BackfillResult(meter.meter.meter_id)
            try:
                values = await self.read_gap(meter, first, until)
                result.records = len(values)
                records = [
                    IntervalRecord(meter.meter.meter_id, FORWARD_DELTA_KWH, v) for v in values
                ]
                written = await asyncio.to_thread(
                    self.store.write_intervals, records, fence=lease.fence
                )
                result.superseded, result.inserted = written.superseded, written.inserted
            except MeterError as error:
                result.error = str(error)
                log.info("metering: backfill of %s: %s", meter.meter.meter_id, error)
            except StaleOwner as stale:
                result.error = str(stale)
                done.append(result)
                break
            done.append(result)
            log.info(
                "metering: backfilled %s from %s: %d superseded, %d new",
                result.meter_id,
                first.isoformat(),
                result.superseded,
                result.inserted,
            )
        self.results = [*self.results[-199:], *done]
        return done

    async def read_gap(
        self, meter: Polled, first: datetime, until: datetime
    ) -> list[IntervalValue]:
        """The measured intervals ending in ``[first, until]`` from the meter's profile."""
        start = (first - PROFILE_INTERVAL).astimezone(self.zone).replace(tzinfo=None)
        count = min(int((until - first) / PROFILE_INTERVAL) + 2, _MAX_RECORDS)
        client = self.acquisition.dlt645(meter.spec.gateway)
        records = await client.read_load_profile(
            meter.meter.meter_id, meter.spec.address, start=start, count=count
        )
        return [v for v in profile_intervals(records, self.zone) if first <= v.end <= until]
