"""Month-boundary register readings read back from the meters (结算日示值), so a month
is billable even when the node was not polling at its start.

Residential billing in a 用电信息采集 system bills a month from the register readings
frozen at its two boundaries (示值差), not from intervals: a DL/T 645-2007 meter freezes
its forward and reverse registers, total and per rate (尖/峰/平/谷), at every local
midnight and keeps the last 62 (上1次…上62次日冻结). On first contact with such a meter
the node reads back the freezes of the 1st of each month still in the meter's memory
and stores them as daily-frozen register reads; ``SummarizeUsage`` then takes a month's
energy (and its TOU split, from the per-rate registers) as their difference. Meters that
keep no history (SDM, pulse) cannot be read back: their months start at the node's first
read of them.

>>> from datetime import datetime
>>> z = ZoneInfo("Asia/Shanghai")
>>> month_start_freezes(datetime(2026, 12, 4, 9, 30, tzinfo=z), depth_days=62)
[4, 34]
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from powerbus.adapters.meters import Acquisition, MeterError
from powerbus.bus.kernel.addresses import HostPort
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.backfill import freeze_records
from powerbus.nodes.metering.store import FROZEN_FORWARD_KWH, ReadingStore, RegisterRecord

__all__ = ["FREEZE_DEPTH_DAYS", "month_start_freezes", "month_start_stored", "read_month_starts"]

log = logging.getLogger(__name__)

FREEZE_DEPTH_DAYS = 62
"""Daily freezes a DL/T 645-2007 meter keeps (上1次 to 上62次日冻结)."""


def month_start_freezes(now: datetime, *, depth_days: int) -> list[int]:
    """Which daily freezes (1 = the last local midnight at or before ``now``, in
    ``now``'s zone) fell on the 1st of a month, newest first, within ``depth_days``."""
    today = now.date()
    found = []
    day = today.replace(day=1)
    while (index := (today - day).days + 1) <= depth_days:
        found.append(index)
        day = (day - timedelta(days=1)).replace(day=1)
    return found


def month_start_stored(store: ReadingStore, meter_id: str, now: datetime, zone: ZoneInfo) -> bool:
    """Whether the freeze of this month's 1st is stored for the meter already (read back
    by an earlier run or another instance): then nothing needs reading back, so a node
    restart does not repeat the read-back on every line."""
    local = now.astimezone(zone)
    first = datetime(local.year, local.month, 1, tzinfo=zone)
    at_first = store.registers(
        [meter_id], first, first + timedelta(seconds=1), reading_types=[FROZEN_FORWARD_KWH[0]]
    )
    return any(r.record.read_at == first for r in at_first)


async def read_month_starts(
    acquisition: Acquisition,
    meter: pb.Meter,
    address: str,
    gateway: HostPort,
    *,
    now: datetime,
    zone: ZoneInfo,
    depth_days: int,
) -> tuple[list[RegisterRecord], bool]:
    """The meter's month-start freezes as register reads, and whether they are all there
    is to read. A freeze the meter refuses, or that is no month boundary, is logged and
    skipped for good (its month stays unbillable from registers); one lost to a timeout,
    a garbled frame or a broken line (a retriable error) makes the read incomplete, so
    the poller tries the meter again at its next poll."""
    client = acquisition.dlt645(gateway)
    records: list[RegisterRecord] = []
    complete = True
    for index in month_start_freezes(now.astimezone(zone), depth_days=depth_days):
        try:
            freeze = await client.read_daily_freeze(meter.meter_id, address, day=index)
        except MeterError as error:
            log.info("metering: month-start freeze %d of %s: %s", index, meter.meter_id, error)
            complete = complete and not error.retriable
            continue
        if freeze.frozen_at.day != 1 or freeze.frozen_at.time() != datetime.min.time():
            # The meter's clock or freeze count disagrees with ours: a freeze that is not
            # a month boundary would bill a wrong span, so it is not used.
            log.info(
                "metering: freeze %d of %s is at %s, not a month start; skipped",
                index, meter.meter_id, freeze.frozen_at,
            )  # fmt: skip
            continue
        records += freeze_records(meter, freeze, zone)
    return records, complete
