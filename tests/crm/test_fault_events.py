"""Fault tickets opened from metering's power-off and tamper events: one per service point
while it is being worked, idempotent by event mrid, nothing for other events."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.metering.v1 import metering_pb2
from powerbus.nodes.crm.store.customers import CustomerStore
from powerbus.nodes.crm.tickets.service import TicketService


def event(mrid: str, name: str, meter: str = "M-1") -> metering_pb2.EndDeviceEvent:
    e = metering_pb2.EndDeviceEvent(
        mrid=mrid,
        reason="voltage lost on all phases",
        severity=metering_pb2.EVENT_SEVERITY_MAJOR,
        event_type=metering_pb2.EndDeviceEventType(name=name),
        meter=common_pb2.MeterRef(meter_id=meter),
    )
    e.created_date_time.FromDatetime(datetime(2026, 12, 3, 23, 50, tzinfo=timezone.utc))
    return e


@pytest.fixture
def bound(customers: CustomerStore) -> None:
    customers.put_customer(crm_pb2.Customer(customer_id="C1", name="王小明"))
    customers.put_account(
        crm_pb2.Account(
            account_id="A1",
            customer_id="C1",
            tariff_id="cn-zhejiang-residential",
            service_address="杭州市西湖区三墩镇某村1号",
            meters=[common_pb2.MeterRef(meter_id="M-1"), common_pb2.MeterRef(meter_id="M-2")],
        ),
        area=crm_pb2.SERVICE_AREA_RURAL,
    )


@pytest.mark.usefixtures("bound")
def test_power_off_opens_one_ticket_per_service_point(tickets: TicketService) -> None:
    first = tickets.on_end_device_event(event("ev-1", "power_off", "M-1"))
    assert first is not None
    assert (first.type, first.channel) == (
        crm_pb2.TICKET_TYPE_FAULT_REPAIR,
        crm_pb2.TICKET_CHANNEL_SYSTEM,
    )
    assert (first.customer_id, first.account_id, first.meter_id) == ("C1", "A1", "M-1")
    assert first.area == crm_pb2.SERVICE_AREA_RURAL
    assert first.site_address == "杭州市西湖区三墩镇某村1号"
    # Clocks start when the device saw it, not when the event arrived.
    assert first.reported_at.ToDatetime(tzinfo=timezone.utc) == datetime(
        2026, 12, 3, 23, 50, tzinfo=timezone.utc
    )
    # Another meter at the same service point, the same meter again, a tamper: same ticket.
    for again in (event("ev-2", "power_off", "M-2"), event("ev-3", "tamper", "M-1")):
        repeat = tickets.on_end_device_event(again)
        assert repeat is not None and repeat.ticket_id == first.ticket_id
    assert len(tickets.list_tickets(crm_pb2.ListTicketsRequest()).tickets) == 1


@pytest.mark.usefixtures("bound")
def test_a_replayed_event_opens_nothing_new_even_after_the_ticket_closed(
    tickets: TicketService,
) -> None:
    first = tickets.on_end_device_event(event("ev-1", "power_off"))
    assert first is not None
    tickets.update(
        crm_pb2.UpdateTicketStatusRequest(
            ticket_id=first.ticket_id, status=crm_pb2.TICKET_STATUS_RESOLVED, actor="crew-1"
        )
    )
    replay = tickets.on_end_device_event(event("ev-1", "power_off"))
    assert replay is not None and replay.ticket_id == first.ticket_id
    fresh = tickets.on_end_device_event(event("ev-9", "power_off"))
    assert fresh is not None and fresh.ticket_id != first.ticket_id


@pytest.mark.usefixtures("bound")
def test_tamper_is_high_priority(tickets: TicketService) -> None:
    ticket = tickets.on_end_device_event(event("ev-t", "tamper"))
    assert ticket is not None and ticket.priority == crm_pb2.TICKET_PRIORITY_HIGH


@pytest.mark.usefixtures("bound")
@pytest.mark.parametrize(
    "unwanted", [event("ev-x", "clock_reset"), event("ev-y", "power_off", "M-unbound")]
)
def test_other_events_and_unbound_meters_open_nothing(
    tickets: TicketService, unwanted: metering_pb2.EndDeviceEvent
) -> None:
    assert tickets.on_end_device_event(unwanted) is None
    assert list(tickets.list_tickets(crm_pb2.ListTicketsRequest()).tickets) == []
