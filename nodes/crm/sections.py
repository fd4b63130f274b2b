"""Fetching each section of the panoramic view from its source through the bus.

Each fetcher takes the accounts and a timeout, makes its calls in parallel with that
timeout as their deadline, and returns plain data. An account or meter the source does
not know (NOT_FOUND) is empty, not a failure: billing has never billed a new account.
Anything else (the source down, a deadline) propagates, and the view marks the whole
section unavailable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from powerbus.billing.v1 import billing_pb2
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.metering.v1 import metering_pb2
from powerbus.nodes.crm.segments import MonthlyKwh
from powerbus.payment.v1 import payment_pb2

if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi files
    from powerbus.billing.v1.billing_pb2_grpc import BillingAsyncStub
    from powerbus.metering.v1.metering_pb2_grpc import MeteringAsyncStub
    from powerbus.payment.v1.payment_pb2_grpc import PaymentsAsyncStub

__all__ = [
    "FORWARD_ENERGY_REGISTER",
    "MeterUsage",
    "fetch_arrears",
    "fetch_bills",
    "fetch_payments",
    "fetch_readings",
]

T = TypeVar("T")

FORWARD_ENERGY_REGISTER = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
"""CIM ReadingType of the bulk forward active energy register, kWh (metering.proto)."""

# Peak 8:00-21:00, valley the rest (the Jiangsu residential split, FACTS §3b): the
# peak share feeds the peak-heavy segment.
PEAK_WINDOWS = (
    metering_pb2.LocalTimeWindow(label="peak", start_minute=480, end_minute=1260),
    metering_pb2.LocalTimeWindow(label="valley", start_minute=1260, end_minute=480),
)
_EVENTS_PER_METER = 10
_REGISTER_LOOKBACK = timedelta(days=7)


async def _known(call: Awaitable[T]) -> T | None:
    """The call's result, or ``None`` when the source does not know the thing asked for."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def _account_ref(account: crm_pb2.Account) -> common_pb2.AccountRef:
    return common_pb2.AccountRef(account_id=account.account_id)


async def fetch_bills(
    billing: BillingAsyncStub,
    accounts: Sequence[crm_pb2.Account],
    limit: int,
    timeout: float,
) -> list[billing_pb2.Bill]:
    """The newest ``limit`` bills across the accounts, newest period first."""
    replies = await asyncio.gather(
        *(
            _known(
                billing.ListBills(
                    billing_pb2.ListBillsRequest(
                        account=_account_ref(a), page=common_pb2.PageRequest(page_size=limit)
                    ),
                    timeout=timeout,
                )
            )
            for a in accounts
        )
    )
    bills = [b for reply in replies if reply is not None for b in reply.bills]
    bills.sort(key=lambda b: (b.period.start.ToNanoseconds(), b.bill_id), reverse=True)
    return bills[:limit]


async def fetch_arrears(
    billing: BillingAsyncStub, accounts: Sequence[crm_pb2.Account], timeout: float
) -> dict[str, billing_pb2.Arrears]:
    """What each account billing knows owes today, by account id."""
    replies = await asyncio.gather(
        *(
            _known(
                billing.GetArrears(
                    billing_pb2.GetArrearsRequest(account=_account_ref(a)), timeout=timeout
                )
            )
            for a in accounts
        )
    )
    return {a.account_id: r for a, r in zip(accounts, replies, strict=True) if r is not None}


async def fetch_payments(
    payments: PaymentsAsyncStub,
    accounts: Sequence[crm_pb2.Account],
    limit: int,
    timeout: float,
) -> list[payment_pb2.Payment]:
    """The newest ``limit`` payments across the accounts."""
    replies = await asyncio.gather(
        *(
            _known(
                payments.ListPayments(
                    payment_pb2.ListPaymentsRequest(
                        account=_account_ref(a), page=common_pb2.PageRequest(page_size=limit)
                    ),
                    timeout=timeout,
                )
            )
            for a in accounts
        )
    )
    found = [p for reply in replies if reply is not None for p in reply.payments]
    found.sort(key=lambda p: (p.paid_at.ToNanoseconds(), p.payment_id), reverse=True)
    return found[:limit]


@dataclass
class MeterUsage:
    """What the readings section learned about one meter, plus its peak kWh."""

    summary: crm_pb2.ReadingsSummary
    peak_kwh: float = 0.0
    total_kwh: float = 0.0
    months: list[MonthlyKwh] = field(default_factory=list)


def _month_starts(now: datetime, months: int) -> list[datetime]:
    """The first instants of the last ``months`` calendar months (UTC), oldest first,
    the current (partial) month excluded."""
    year, month = now.year, now.month
    starts = []
    for _ in range(months):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        starts.append(datetime(year, month, 1, tzinfo=timezone.utc))
    return starts[::-1]


def _period(start: datetime, end: datetime) -> common_pb2.Period:
    period = common_pb2.Period()
    period.start.FromDatetime(start)
    period.end.FromDatetime(end)
    return period


async def fetch_readings(
    metering: MeteringAsyncStub,
    meters: Sequence[common_pb2.MeterRef],
    months: int,
    timeout: float,
    now: datetime,
) -> list[MeterUsage]:
    """Per meter: state, latest register read, recent events and monthly kWh."""
    if not meters:
        return []
    refs = [common_pb2.MeterRef(meter_id=m.meter_id) for m in meters]
    starts = _month_starts(now, months)
    ends = [*starts[1:], datetime(now.year, now.month, 1, tzinfo=timezone.utc)]
    monthly = asyncio.gather(
        *(
            _known(
                metering.SummarizeUsage(
                    metering_pb2.SummarizeUsageRequest(
                        meters=refs, period=_period(s, e), windows=PEAK_WINDOWS
                    ),
                    timeout=timeout,
                )
            )
            for s, e in zip(starts, ends, strict=True)
        )
    )
    per_meter = asyncio.gather(*(_meter_state(metering, m, timeout, now) for m in meters))
    summaries, states = await asyncio.gather(monthly, per_meter)
    usage = {m.meter_id: MeterUsage(summary=s) for m, s in zip(meters, states, strict=True)}
    for start, reply in zip(starts, summaries, strict=True):
        for item in reply.summaries if reply is not None else ():
            _add_month(usage.get(item.meter.meter_id), start, item)
    return list(usage.values())


def _add_month(usage: MeterUsage | None, start: datetime, item: metering_pb2.UsageSummary) -> None:
    if usage is None:
        return
    usage.summary.monthly_usage.append(
        crm_pb2.MonthlyUsage(
            year=start.year, month=start.month, kwh=item.kwh, estimated=item.values_estimated > 0
        )
    )
    usage.months.append(MonthlyKwh(start.year, start.month, item.kwh))
    usage.total_kwh += item.kwh
    usage.peak_kwh += sum(w.kwh for w in item.window_usage if w.label == "peak")


async def _meter_state(
    metering: MeteringAsyncStub,
    meter: common_pb2.MeterRef,
    timeout: float,
    now: datetime,
) -> crm_pb2.ReadingsSummary:
    ref = common_pb2.MeterRef(meter_id=meter.meter_id)
    state, events, reads = await asyncio.gather(
        _known(
            metering.GetMeter(
                metering_pb2.GetMeterRequest(meter_id=meter.meter_id), timeout=timeout
            )
        ),
        _known(
            metering.ListEndDeviceEvents(
                metering_pb2.ListEndDeviceEventsRequest(
                    meters=[ref],
                    min_severity=metering_pb2.EVENT_SEVERITY_WARNING,
                    page=common_pb2.PageRequest(page_size=_EVENTS_PER_METER),
                ),
                timeout=timeout,
            )
        ),
        _known(
            metering.GetMeterReadings(
                metering_pb2.GetMeterReadingsRequest(
                    meters=[ref],
                    period=_period(now - _REGISTER_LOOKBACK, now),
                    reading_types=[FORWARD_ENERGY_REGISTER],
                ),
                timeout=timeout,
            )
        ),
    )
    summary = crm_pb2.ReadingsSummary(meter=meter)
    if state is not None:
        summary.connect_state = state.connect_state
    if events is not None:
        summary.recent_events.extend(events.end_device_events[:_EVENTS_PER_METER])
    latest = _latest_register(reads)
    if latest is not None:
        summary.last_register_kwh = latest.value
        summary.last_read_at.CopyFrom(latest.time_stamp)
    elif state is not None and state.HasField("last_read_at"):
        summary.last_read_at.CopyFrom(state.last_read_at)
    return summary


def _latest_register(reply: Any) -> metering_pb2.Reading | None:
    if reply is None:
        return None
    reads = [r for mr in reply.meter_readings for r in mr.readings]
    return max(reads, key=lambda r: r.time_stamp.ToNanoseconds(), default=None)
