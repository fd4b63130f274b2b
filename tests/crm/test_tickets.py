"""Ticket lifecycle and SLA clocks, with the clock injected: deadlines by area and type,
milestones met by transitions, working days across holidays, breaches and alerts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from crm_helpers import FakeClock

from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm.store.customers import CustomerStore
from powerbus.nodes.crm.tickets.lifecycle import TransitionRefused
from powerbus.nodes.crm.tickets.monitor import SlaMonitor
from powerbus.nodes.crm.tickets.service import TicketService

SHANGHAI = ZoneInfo("Asia/Shanghai")
S = crm_pb2  # enum values read better with a short prefix


def fault(
    request_id: str = "95598-1", area: int = S.SERVICE_AREA_URBAN
) -> crm_pb2.OpenTicketRequest:
    return crm_pb2.OpenTicketRequest(
        request_id=request_id,
        type=S.TICKET_TYPE_FAULT_REPAIR,
        channel=S.TICKET_CHANNEL_PHONE,
        title="整栋楼停电",
        area=area,  # type: ignore[arg-type]
    )


def move(ticket_id: str, status: int, **fields: object) -> crm_pb2.UpdateTicketStatusRequest:
    return crm_pb2.UpdateTicketStatusRequest(
        ticket_id=ticket_id,
        status=status,
        actor="dispatcher-7",
        **fields,  # type: ignore[arg-type]
    )


def target(ticket: crm_pb2.ServiceTicket, milestone: int) -> crm_pb2.SlaTarget:
    (found,) = [t for t in ticket.sla_targets if t.milestone == milestone]
    return found


def local(ts: object) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc).astimezone(SHANGHAI)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("area", "minutes"),
    [
        (S.SERVICE_AREA_URBAN, 45),
        (S.SERVICE_AREA_RURAL, 90),
        (S.SERVICE_AREA_REMOTE, 120),
        (S.SERVICE_AREA_UNSPECIFIED, 45),
    ],
)
def test_fault_arrival_deadline_by_area(
    tickets: TicketService, clock: FakeClock, area: int, minutes: int
) -> None:
    ticket = tickets.open(fault(area=area))
    arrival = target(ticket, S.SLA_MILESTONE_ARRIVAL)
    assert arrival.due_at.ToDatetime(tzinfo=timezone.utc) == clock.now + timedelta(minutes=minutes)
    assert not target(ticket, S.SLA_MILESTONE_RESTORATION).HasField("due_at")


def test_fault_lifecycle_meets_milestones_and_records_who_and_why(
    tickets: TicketService, clock: FakeClock
) -> None:
    opened = tickets.open(fault(area=S.SERVICE_AREA_RURAL), actor="agent-1")
    tid = opened.ticket_id
    clock.advance(minutes=10)
    tickets.update(move(tid, S.TICKET_STATUS_ASSIGNED, assignee="crew-3", note="派工"))
    clock.advance(minutes=70)
    on_site = tickets.update(move(tid, S.TICKET_STATUS_ON_SITE, note="到达"))
    arrival = target(on_site, S.SLA_MILESTONE_ARRIVAL)
    assert arrival.met_at.ToDatetime(tzinfo=timezone.utc) == clock.now and not arrival.breached
    restoration = target(on_site, S.SLA_MILESTONE_RESTORATION)
    assert restoration.due_at.ToDatetime(tzinfo=timezone.utc) == clock.now + timedelta(hours=4)
    clock.advance(hours=5)  # restored late
    resolved = tickets.update(move(tid, S.TICKET_STATUS_RESOLVED, resolution="更换熔断器"))
    assert target(resolved, S.SLA_MILESTONE_RESTORATION).breached
    assert resolved.resolution == "更换熔断器" and resolved.assignee == "crew-3"
    closed = tickets.update(move(tid, S.TICKET_STATUS_CLOSED, note="回访满意"))
    history = [(S.TicketStatus.Name(h.to_status), h.actor, h.note) for h in closed.history]
    assert history == [
        ("TICKET_STATUS_OPEN", "agent-1", "opened"),
        ("TICKET_STATUS_ASSIGNED", "dispatcher-7", "派工"),
        ("TICKET_STATUS_ON_SITE", "dispatcher-7", "到达"),
        ("TICKET_STATUS_RESOLVED", "dispatcher-7", ""),
        ("TICKET_STATUS_CLOSED", "dispatcher-7", "回访满意"),
    ]
    assert [h.from_status for h in closed.history][1:] == [h.to_status for h in closed.history][:-1]


def test_arrival_is_breached_once_the_deadline_passes(
    tickets: TicketService, clock: FakeClock
) -> None:
    tid = tickets.open(fault()).ticket_id
    clock.advance(minutes=44)
    assert not target(tickets.get(tid), S.SLA_MILESTONE_ARRIVAL).breached
    clock.advance(minutes=2)
    assert target(tickets.get(tid), S.SLA_MILESTONE_ARRIVAL).breached
    late = tickets.update(move(tid, S.TICKET_STATUS_ON_SITE))
    assert target(late, S.SLA_MILESTONE_ARRIVAL).breached  # met, but late


def test_invalid_transitions_name_from_and_to(tickets: TicketService) -> None:
    tid = tickets.open(fault()).ticket_id
    with pytest.raises(TransitionRefused, match="from TICKET_STATUS_OPEN to TICKET_STATUS_CLOSED"):
        tickets.update(move(tid, S.TICKET_STATUS_CLOSED))
    tickets.update(move(tid, S.TICKET_STATUS_CANCELLED, note="重复报修"))
    with pytest.raises(
        TransitionRefused, match=r"from TICKET_STATUS_CANCELLED to .*none, it is final"
    ):
        tickets.update(move(tid, S.TICKET_STATUS_ASSIGNED))
    with pytest.raises(InvalidArgument, match="status"):
        tickets.update(move(tid, S.TICKET_STATUS_UNSPECIFIED))
    with pytest.raises(NotFound):
        tickets.update(move("TK-nope", S.TICKET_STATUS_ASSIGNED))


def test_reopen_unmeets_resolution_and_repeat_is_harmless(tickets: TicketService) -> None:
    tid = tickets.open(fault()).ticket_id
    tickets.update(move(tid, S.TICKET_STATUS_RESOLVED))
    again = tickets.update(move(tid, S.TICKET_STATUS_RESOLVED))  # a retry
    assert len(again.history) == 2
    reopened = tickets.update(move(tid, S.TICKET_STATUS_IN_PROGRESS, note="客户反馈仍停电"))
    assert not target(reopened, S.SLA_MILESTONE_RESTORATION).HasField("met_at")
    assert target(reopened, S.SLA_MILESTONE_ARRIVAL).HasField("met_at")


def test_expected_status_guards_concurrent_dispatchers(tickets: TicketService) -> None:
    tid = tickets.open(fault()).ticket_id
    tickets.update(move(tid, S.TICKET_STATUS_ASSIGNED, assignee="crew-1"))
    with pytest.raises(
        TransitionRefused, match="is TICKET_STATUS_ASSIGNED, not TICKET_STATUS_OPEN"
    ):
        tickets.update(
            move(
                tid,
                S.TICKET_STATUS_ASSIGNED,
                assignee="crew-2",
                expected_status=S.TICKET_STATUS_OPEN,
            )
        )
    assert tickets.get(tid).assignee == "crew-1"


def test_open_is_idempotent_by_request_id(tickets: TicketService) -> None:
    first = tickets.open(fault("call-1"))
    assert tickets.open(fault("call-1")).ticket_id == first.ticket_id
    with pytest.raises(AlreadyExists, match="call-1"):
        tickets.open(fault("call-1", area=S.SERVICE_AREA_RURAL))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (crm_pb2.OpenTicketRequest(type=S.TICKET_TYPE_COMPLAINT, title="t"), "request_id"),
        (crm_pb2.OpenTicketRequest(request_id="r", title="t"), "type"),
        (crm_pb2.OpenTicketRequest(request_id="r", type=S.TICKET_TYPE_COMPLAINT), "title"),
        (
            crm_pb2.OpenTicketRequest(request_id="r", type=S.TICKET_TYPE_CONNECTION, title="t"),
            "connection_scheme",
        ),
    ],
)
def test_open_validates(
    tickets: TicketService, request_: crm_pb2.OpenTicketRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        tickets.open(request_)
    assert caught.value.field == field


def test_unknown_customer_or_account_is_not_found(tickets: TicketService) -> None:
    with pytest.raises(NotFound, match="C404"):
        tickets.open(
            crm_pb2.OpenTicketRequest(
                request_id="r1", type=S.TICKET_TYPE_COMPLAINT, title="t", customer_id="C404"
            )
        )
    with pytest.raises(NotFound, match="A404"):
        tickets.open(
            crm_pb2.OpenTicketRequest(
                request_id="r2", type=S.TICKET_TYPE_COMPLAINT, title="t", account_id="A404"
            )
        )


def test_important_customer_gets_high_priority(
    tickets: TicketService, customers: CustomerStore
) -> None:
    customers.put_customer(crm_pb2.Customer(customer_id="H1", name="市第一医院", important=True))
    ticket = tickets.open(
        crm_pb2.OpenTicketRequest(
            request_id="r", type=S.TICKET_TYPE_FAULT_REPAIR, title="t", customer_id="H1"
        )
    )
    assert ticket.priority == S.TICKET_PRIORITY_HIGH


def test_complaint_deadlines_skip_the_national_day_holiday(
    tickets: TicketService, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)
    ticket = tickets.open(
        crm_pb2.OpenTicketRequest(
            request_id="c1", type=S.TICKET_TYPE_COMPLAINT, title="抄表员态度差"
        )
    )
    # 1 Oct - 7 Oct off, Thu 8 Oct is the first working day after the report.
    assert local(target(ticket, S.SLA_MILESTONE_FIRST_CONTACT).due_at) == datetime(
        2026, 10, 9, 0, 0, tzinfo=SHANGHAI
    )
    # 8, 9, 10 (a worked Saturday), 12, 13, 14, 15 Oct: the seventh is Thu 15 Oct.
    assert local(target(ticket, S.SLA_MILESTONE_RESOLUTION).due_at) == datetime(
        2026, 10, 16, 0, 0, tzinfo=SHANGHAI
    )


@pytest.mark.parametrize(
    ("scheme", "due_day"),
    [(S.CONNECTION_SCHEME_RESIDENTIAL, 11), (S.CONNECTION_SCHEME_LOW_VOLTAGE_NON_RESIDENTIAL, 14)],
)
def test_connection_deadline_in_working_days(
    tickets: TicketService, clock: FakeClock, scheme: int, due_day: int
) -> None:
    # Friday 4 Dec 2026: 5 working days end Friday 11 Dec; 6 end Monday 14 Dec.
    ticket = tickets.open(
        crm_pb2.OpenTicketRequest(
            request_id=f"conn-{scheme}",
            type=S.TICKET_TYPE_CONNECTION,
            title="新装",
            connection_scheme=scheme,
        )
    )  # type: ignore[arg-type]
    due = local(target(ticket, S.SLA_MILESTONE_RESOLUTION).due_at)
    assert due == datetime(2026, 12, due_day + 1, 0, 0, tzinfo=SHANGHAI)


def test_billing_queries_have_no_deadline(tickets: TicketService) -> None:
    ticket = tickets.open(
        crm_pb2.OpenTicketRequest(
            request_id="q", type=S.TICKET_TYPE_BILLING_QUERY, title="电费咨询"
        )
    )
    assert list(ticket.sla_targets) == []


def test_list_is_most_urgent_first_and_filters_breaches(
    tickets: TicketService, clock: FakeClock
) -> None:
    urban = tickets.open(fault("u", S.SERVICE_AREA_URBAN)).ticket_id
    remote = tickets.open(fault("r", S.SERVICE_AREA_REMOTE)).ticket_id
    rural = tickets.open(fault("m", S.SERVICE_AREA_RURAL)).ticket_id
    listed = tickets.list_tickets(crm_pb2.ListTicketsRequest())
    assert [t.ticket_id for t in listed.tickets] == [urban, rural, remote]
    clock.advance(minutes=60)
    breached = tickets.list_tickets(crm_pb2.ListTicketsRequest(breached_only=True))
    assert [t.ticket_id for t in breached.tickets] == [urban]
    only_open = tickets.list_tickets(crm_pb2.ListTicketsRequest(statuses=[S.TICKET_STATUS_ON_SITE]))
    assert list(only_open.tickets) == []


async def test_monitor_reports_each_breach_once(tickets: TicketService, clock: FakeClock) -> None:
    reported: list[tuple[str, int]] = []
    monitor = SlaMonitor(
        tickets,
        interval=3600,
        hook=lambda found: reported.extend((c.ticket_id, c.milestone) for c in found),
    )
    tid = tickets.open(fault()).ticket_id
    assert await monitor.check() == []
    clock.advance(minutes=46)
    await monitor.check()
    await monitor.check()
    assert reported == [(tid, S.SLA_MILESTONE_ARRIVAL)]
    async with monitor:  # the loop starts and stops cleanly
        pass


def test_appointment_slots_skip_days_off_and_fill_up(
    tickets: TicketService, clock: FakeClock
) -> None:
    tid = tickets.open(
        crm_pb2.OpenTicketRequest(
            request_id="conn",
            type=S.TICKET_TYPE_CONNECTION,
            title="新装",
            connection_scheme=S.CONNECTION_SCHEME_RESIDENTIAL,
        )
    ).ticket_id
    slots = tickets.free_slots(days=3)  # Fri (afternoon only: it is 08:00), Sat, Sun, Mon
    assert [s.label for s, _ in slots] == [
        "2026-12-04 09:00-12:00",
        "2026-12-04 14:00-17:30",
        "2026-12-07 09:00-12:00",
        "2026-12-07 14:00-17:30",
    ]
    start = slots[0][0].start
    tickets.slot_capacity = 1
    assert tickets.book(tid, start, actor="agent-1").label == "2026-12-04 09:00-12:00"
    other = tickets.open(
        crm_pb2.OpenTicketRequest(
            request_id="conn2",
            type=S.TICKET_TYPE_CONNECTION,
            title="新装",
            connection_scheme=S.CONNECTION_SCHEME_RESIDENTIAL,
        )
    ).ticket_id
    with pytest.raises(AlreadyExists, match="fully booked"):
        tickets.book(other, start, actor="agent-1")
    with pytest.raises(InvalidArgument, match="no appointment slot"):
        tickets.book(other, start + timedelta(minutes=5), actor="agent-1")
    faulty = tickets.open(fault()).ticket_id
    with pytest.raises(TransitionRefused, match="takes no appointment"):
        tickets.book(faulty, slots[1][0].start, actor="agent-1")
