"""Small real gRPC nodes that stand in for billing, payment and metering in CRM tests.

They speak the real protos from in-memory data and register on a real bus like any node;
``delay`` makes one slow, to prove the view's per-section deadlines.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.kernel.errors import NotFound
from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2, metering_pb2_grpc
from powerbus.nodes.sdk import Node
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

Context = Any


def money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(fen=fen, currency="CNY")


def period(start: datetime, end: datetime) -> common_pb2.Period:
    p = common_pb2.Period()
    p.start.FromDatetime(start)
    p.end.FromDatetime(end)
    return p


@dataclass
class Ledger:
    """What the fakes know, by account and meter id."""

    bills: dict[str, list[billing_pb2.Bill]] = field(default_factory=dict)
    arrears: dict[str, billing_pb2.Arrears] = field(default_factory=dict)
    payments: dict[str, list[payment_pb2.Payment]] = field(default_factory=dict)
    monthly_kwh: dict[str, float] = field(default_factory=dict)
    """meter id -> kWh per month (peak share 70 %)."""
    events: dict[str, list[metering_pb2.EndDeviceEvent]] = field(default_factory=dict)
    delay: float = 0.0


class FakeBilling(Node, billing_pb2_grpc.BillingServicer):
    kind = "fake-billing"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def ListBills(
        self, request: billing_pb2.ListBillsRequest, context: Context
    ) -> billing_pb2.ListBillsResponse:
        await asyncio.sleep(self.ledger.delay)
        if request.account.account_id not in self.ledger.bills:
            raise NotFound(f"account {request.account.account_id} never billed")
        bills = self.ledger.bills[request.account.account_id][: request.page.page_size or 50]
        return billing_pb2.ListBillsResponse(bills=bills)

    async def GetArrears(
        self, request: billing_pb2.GetArrearsRequest, context: Context
    ) -> billing_pb2.Arrears:
        await asyncio.sleep(self.ledger.delay)
        found = self.ledger.arrears.get(request.account.account_id)
        if found is None:
            raise NotFound(f"account {request.account.account_id} unknown to billing")
        return found


class FakePayments(Node, payment_pb2_grpc.PaymentsServicer):
    kind = "fake-payments"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def ListPayments(
        self, request: payment_pb2.ListPaymentsRequest, context: Context
    ) -> payment_pb2.ListPaymentsResponse:
        await asyncio.sleep(self.ledger.delay)
        found = self.ledger.payments.get(request.account.account_id, [])
        return payment_pb2.ListPaymentsResponse(payments=found[: request.page.page_size or 50])


class FakeMetering(Node, metering_pb2_grpc.MeteringServicer):
    kind = "fake-metering"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def SummarizeUsage(
        self, request: metering_pb2.SummarizeUsageRequest, context: Context
    ) -> metering_pb2.SummarizeUsageResponse:
        await asyncio.sleep(self.ledger.delay)
        reply = metering_pb2.SummarizeUsageResponse()
        for meter in request.meters:
            kwh = self.ledger.monthly_kwh.get(meter.meter_id)
            if kwh is None:
                raise NotFound(f"meter {meter.meter_id} unknown")
            reply.summaries.append(
                metering_pb2.UsageSummary(
                    meter=meter,
                    period=request.period,
                    kwh=kwh,
                    window_usage=[
                        metering_pb2.WindowUsage(label="peak", kwh=kwh * 0.7),
                        metering_pb2.WindowUsage(label="valley", kwh=kwh * 0.3),
                    ],
                    values_total=96,
                    complete=True,
                )
            )
        return reply

    async def GetMeter(
        self, request: metering_pb2.GetMeterRequest, context: Context
    ) -> metering_pb2.Meter:
        if request.meter_id not in self.ledger.monthly_kwh:
            raise NotFound(f"meter {request.meter_id} unknown")
        return metering_pb2.Meter(
            meter_id=request.meter_id, connect_state=metering_pb2.CONNECT_STATE_CONNECTED
        )

    async def ListEndDeviceEvents(
        self, request: metering_pb2.ListEndDeviceEventsRequest, context: Context
    ) -> metering_pb2.ListEndDeviceEventsResponse:
        found = [e for m in request.meters for e in self.ledger.events.get(m.meter_id, [])]
        return metering_pb2.ListEndDeviceEventsResponse(end_device_events=found)

    async def GetMeterReadings(
        self, request: metering_pb2.GetMeterReadingsRequest, context: Context
    ) -> metering_pb2.GetMeterReadingsResponse:
        reply = metering_pb2.GetMeterReadingsResponse()
        for meter in request.meters:
            reading = metering_pb2.Reading(value=12345.6)
            reading.time_stamp.FromDatetime(datetime(2026, 12, 3, tzinfo=timezone.utc))
            reply.meter_readings.append(metering_pb2.MeterReading(meter=meter, readings=[reading]))
        return reply
