"""Fault tickets from the bus: a real CRM node started with ``--events-out`` subscribes to
``metering.end_device_event.reported``; a real SDK publisher (outbox + relay, as the
metering node publishes) sends a power-off, a tamper at the same service point and a
replayed power-off. One fault-repair ticket opens; the repeats open none."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path

import grpc

from powerbus.bus.kernel.database import write_transaction
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.events.v1 import events_pb2
from powerbus.metering.v1 import metering_pb2
from powerbus.nodes.sdk.events import Outbox, Publisher

TIMEOUT = 10.0
WAIT = 60.0


def reported(mrid: str, name: str, meter: str) -> events_pb2.EndDeviceEventReported:
    event = metering_pb2.EndDeviceEvent(
        mrid=mrid,
        reason="voltage lost on all phases",
        severity=metering_pb2.EVENT_SEVERITY_MAJOR,
        event_type=metering_pb2.EndDeviceEventType(name=name),
        meter=common_pb2.MeterRef(meter_id=meter),
    )
    event.created_date_time.FromDatetime(datetime(2026, 12, 3, 23, 50, tzinfo=timezone.utc))
    return events_pb2.EndDeviceEventReported(end_device_event=event)


async def publish(bus, db: Path, events: list[events_pb2.EndDeviceEventReported]) -> None:
    """Stage ``events`` in a metering-like source's outbox and relay them until the bus
    has stored every one (bounded)."""
    box = Outbox.open(f"sqlite:///{db}", source="metering-sim")
    try:
        async with Publisher(
            source="metering-sim",
            outbox=box,
            bus=bus.grpc,
            events_in=[bus.state["events_in"]],
        ) as publisher:
            with write_transaction(box.engine) as conn:
                box.add_many(conn, events)
            publisher.notify()
            deadline = time.monotonic() + WAIT
            while publisher.stored < len(events):
                assert time.monotonic() < deadline, f"bus stored {publisher.stored}"
                await asyncio.sleep(0.1)
    finally:
        box.close()


def faults(stub: crm_pb2_grpc.ServiceTicketsStub) -> list[crm_pb2.ServiceTicket]:
    request = crm_pb2.ListTicketsRequest(types=[crm_pb2.TICKET_TYPE_FAULT_REPAIR])
    return list(stub.ListTickets(request, timeout=TIMEOUT).tickets)


def test_a_power_off_from_the_bus_opens_one_ticket_and_repeats_open_none(
    bus, node_factory, db_url, tmp_path
):
    node_factory("crm", bus=bus, node_id="crm-1", db=db_url, events_out=bus.state["events_out"])
    with grpc.insecure_channel(bus.grpc) as channel:
        customers = crm_pb2_grpc.CustomersStub(channel)
        tickets = crm_pb2_grpc.ServiceTicketsStub(channel)
        customers.PutCustomer(
            crm_pb2.PutCustomerRequest(customer=crm_pb2.Customer(customer_id="C1", name="王小明")),
            timeout=TIMEOUT,
        )
        for account, meter in (("A1", "M-1"), ("A2", "M-9")):
            customers.PutAccount(
                crm_pb2.PutAccountRequest(
                    account=crm_pb2.Account(
                        account_id=account,
                        customer_id="C1",
                        tariff_id="cn-zhejiang-residential",
                        service_address="杭州市西湖区三墩镇某村1号",
                        meters=[common_pb2.MeterRef(meter_id=meter)],
                    )
                ),
                timeout=TIMEOUT,
            )
        first = [reported("ev-1", "power_off", "M-1"), reported("ev-x", "clock_reset", "M-1")]
        asyncio.run(publish(bus, tmp_path / "metering.db", first))
        deadline = time.monotonic() + WAIT
        while not (opened := faults(tickets)):
            assert time.monotonic() < deadline, "no fault ticket from the power-off event"
            time.sleep(0.2)
        (ticket,) = opened
        assert (ticket.account_id, ticket.meter_id) == ("A1", "M-1")
        assert ticket.channel == crm_pb2.TICKET_CHANNEL_SYSTEM

        # The same event again (a replay) and a tamper at the same service point, then a
        # marker on another account: events of one source are handled in order, so once
        # the marker's ticket is there the repeats were handled before it.
        repeats = [
            reported("ev-1", "power_off", "M-1"),
            reported("ev-2", "tamper", "M-1"),
            reported("ev-m", "power_off", "M-9"),
        ]
        asyncio.run(publish(bus, tmp_path / "metering.db", repeats))
        deadline = time.monotonic() + WAIT
        while len(opened := faults(tickets)) < 2:
            assert time.monotonic() < deadline, "no ticket from the marker event"
            time.sleep(0.2)
        assert sorted(t.account_id for t in opened) == ["A1", "A2"]
        assert ticket.ticket_id in {t.ticket_id for t in opened}
