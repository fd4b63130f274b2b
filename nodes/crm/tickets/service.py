"""The ticket service: opening, moving, listing tickets, and fault tickets from device
events. Synchronous over the store; the node calls it from a worker thread.

>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.nodes.crm.store.migrations import MIGRATIONS
>>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
>>> tickets = TicketService(engine, calendar=WorkingCalendar.shipped(), node_id="crm-1")
>>> t = tickets.open(crm_pb2.OpenTicketRequest(
...     request_id="95598-1", type=crm_pb2.TICKET_TYPE_BILLING_QUERY, title="账单疑问"))
>>> crm_pb2.TicketStatus.Name(t.status)
'TICKET_STATUS_OPEN'
>>> engine.dispose()
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.metering.v1 import metering_pb2
from powerbus.nodes.crm.store import tickets as store
from powerbus.nodes.crm.store.customers import CustomerStore
from powerbus.nodes.crm.store.paging import decode_token, encode_token, page_size
from powerbus.nodes.crm.store.records import from_timestamp
from powerbus.nodes.crm.store.tables import accounts, customers
from powerbus.nodes.crm.tickets import appointments, lifecycle, sla
from powerbus.nodes.crm.tickets.calendar import WorkingCalendar

__all__ = ["FAULT_EVENT_NAMES", "Clock", "TicketService"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

FAULT_EVENT_NAMES = {"power_off": "停电", "tamper": "计量装置异常(窃电嫌疑)"}
"""End-device event names that open a fault-repair ticket, with the title's wording."""

_SLOT_CAPACITY = 4
_BOOKABLE = {crm_pb2.TICKET_TYPE_CONNECTION, crm_pb2.TICKET_TYPE_METER_CHECK}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TicketService:
    """Tickets with their SLA clocks and history; ``clock`` is injected so tests can move
    time, ``node_id`` is the actor of what the node does by itself."""

    def __init__(
        self,
        engine: Engine,
        *,
        calendar: WorkingCalendar,
        node_id: str,
        clock: Clock = _now,
        slot_capacity: int = _SLOT_CAPACITY,
    ) -> None:
        self.engine = engine
        self.calendar = calendar
        self.node_id = node_id
        self.clock = clock
        self.slot_capacity = slot_capacity
        self.customers = CustomerStore(engine, clock=clock)

    # -- opening -----------------------------------------------------------------------

    def open(
        self, request: crm_pb2.OpenTicketRequest, *, actor: str = "", service_point: str = ""
    ) -> crm_pb2.ServiceTicket:
        """Open a ticket (idempotent by request_id); see ``OpenTicket`` in crm.proto."""
        _validate_open(request)
        digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
        now = self.clock()
        try:
            ticket, created = self._insert(request, digest, now, actor, service_point)
        except sa.exc.IntegrityError:
            # A concurrent open with the same request_id won the insert: answer as a retry.
            with read_transaction(self.engine) as conn:
                found = store.find_request(conn, request.request_id)
                if found is None:
                    raise
                return self._replay(conn, request, found, digest, now)
        if created:
            log.info(
                "ticket %s opened: %s via %s",
                ticket.row["ticket_id"],
                ticket.row["type"],
                ticket.row["channel"],
            )
        return ticket.to_proto(now)

    def _insert(
        self,
        request: crm_pb2.OpenTicketRequest,
        digest: str,
        now: datetime,
        actor: str,
        service_point: str,
    ) -> tuple[store.StoredTicket, bool]:
        """The ticket and whether it is new (False: the request_id opened it before)."""
        with write_transaction(self.engine) as conn:
            found = store.find_request(conn, request.request_id)
            if found is not None:
                return store.load_ticket(conn, self._replay_id(request, found, digest)), False
            values = self._new_row(conn, request, digest, now, service_point)
            area = crm_pb2.ServiceArea.Value(values["area"])
            clocks = sla.initial_clocks(
                request.type, area, request.connection_scheme, values["reported_at"], self.calendar
            )
            first = store.Transition(
                crm_pb2.TICKET_STATUS_UNSPECIFIED,
                crm_pb2.TICKET_STATUS_OPEN,
                now,
                actor or self.node_id,
                "opened",
            )
            store.insert_ticket(conn, values, clocks, first)
            return store.load_ticket(conn, values["ticket_id"]), True

    def _replay(
        self,
        conn: Connection,
        request: crm_pb2.OpenTicketRequest,
        found: tuple[str, str],
        digest: str,
        now: datetime,
    ) -> crm_pb2.ServiceTicket:
        return store.load_ticket(conn, self._replay_id(request, found, digest)).to_proto(now)

    @staticmethod
    def _replay_id(request: crm_pb2.OpenTicketRequest, found: tuple[str, str], digest: str) -> str:
        """The ticket a repeated request_id opened; ALREADY_EXISTS if it asked for another."""
        if found[1] != digest:
            raise AlreadyExists("request_id", f"{request.request_id!r} opened a different ticket")
        return found[0]

    def _new_row(
        self,
        conn: Connection,
        request: crm_pb2.OpenTicketRequest,
        digest: str,
        now: datetime,
        service_point: str,
    ) -> dict[str, Any]:
        customer_id, important = self._customer_of(conn, request)
        priority = request.priority or (
            crm_pb2.TICKET_PRIORITY_HIGH if important else crm_pb2.TICKET_PRIORITY_NORMAL
        )
        is_fault = request.type == crm_pb2.TICKET_TYPE_FAULT_REPAIR
        return {
            "ticket_id": f"TK{now:%Y%m%d}{uuid.uuid4().hex[:10].upper()}",
            "request_id": request.request_id,
            "request_hash": digest,
            "type": crm_pb2.TicketType.Name(request.type),
            "status": "TICKET_STATUS_OPEN",
            "priority": crm_pb2.TicketPriority.Name(priority),
            "channel": crm_pb2.TicketChannel.Name(request.channel),
            "customer_id": customer_id,
            "account_id": request.account_id,
            "meter_id": request.meter_id,
            "service_point_id": service_point,
            "open_fault_point": service_point if service_point and is_fault else None,
            "title": request.title,
            "description": request.description,
            "site_address": request.site_address,
            "area": crm_pb2.ServiceArea.Name(request.area or crm_pb2.SERVICE_AREA_URBAN),
            "connection_scheme": crm_pb2.ConnectionScheme.Name(request.connection_scheme),
            "assignee": "",
            "resolution": "",
            "reported_at": from_timestamp(request.reported_at, default=now),
            "created_at": now,
            "updated_at": now,
        }

    def _customer_of(
        self, conn: Connection, request: crm_pb2.OpenTicketRequest
    ) -> tuple[str, bool]:
        """The ticket's customer id (from its account when not given) and importance."""
        customer_id = request.customer_id
        if request.account_id:
            owner = conn.execute(
                sa.select(accounts.c.customer_id).where(accounts.c.account_id == request.account_id)
            ).scalar_one_or_none()
            if owner is None:
                raise NotFound(f"account {request.account_id!r} not found")
            if customer_id and customer_id != owner:
                raise InvalidArgument(
                    "account_id", f"{request.account_id!r} belongs to another customer"
                )
            customer_id = owner
        if not customer_id:
            return "", False
        important = conn.execute(
            sa.select(customers.c.important).where(customers.c.customer_id == customer_id)
        ).scalar_one_or_none()
        if important is None:
            raise NotFound(f"customer {customer_id!r} not found")
        return customer_id, bool(important)

    # -- reading -----------------------------------------------------------------------

    def get(self, ticket_id: str) -> crm_pb2.ServiceTicket:
        """A ticket with its history and SLA; :class:`NotFound` otherwise."""
        with read_transaction(self.engine) as conn:
            return store.load_ticket(conn, ticket_id).to_proto(self.clock())

    def list_tickets(self, request: crm_pb2.ListTicketsRequest) -> crm_pb2.ListTicketsResponse:
        """Matching tickets, most urgent deadline first, paged."""
        size = page_size(request.page.page_size)
        offset = decode_token(request.page.page_token, "tickets")
        now = self.clock()
        with read_transaction(self.engine) as conn:
            ids, total = store.list_ticket_ids(conn, request, now=now, offset=offset, size=size)
            found = [store.load_ticket(conn, i).to_proto(now) for i in ids]
        more = offset + size < total
        return crm_pb2.ListTicketsResponse(
            tickets=found,
            page=common_pb2.PageResponse(
                next_page_token=encode_token(offset + size, "tickets") if more else "",
                total_size=total,
            ),
        )

    # -- moving ------------------------------------------------------------------------

    def update(self, request: crm_pb2.UpdateTicketStatusRequest) -> crm_pb2.ServiceTicket:
        """Move a ticket (see ``UpdateTicketStatus``): the transition is checked, recorded
        with who and why, and the SLA clocks advance."""
        if request.status == crm_pb2.TICKET_STATUS_UNSPECIFIED:
            raise InvalidArgument("status", "required")
        now = self.clock()
        at = from_timestamp(request.at, default=now)
        with write_transaction(self.engine) as conn:
            ticket = store.load_ticket(conn, request.ticket_id)
            current = ticket.status
            if request.expected_status and request.expected_status != current:
                raise lifecycle.TransitionRefused(
                    f"expected_status: ticket {request.ticket_id} is "
                    f"{lifecycle.status_name(current)}, not "
                    f"{lifecycle.status_name(request.expected_status)}"
                )
            if request.status == current and not request.assignee:
                return ticket.to_proto(now)
            lifecycle.check_transition(current, request.status)
            clocks = sla.after_transition(ticket.clocks, request.status, at, ticket.area)
            values: dict[str, Any] = {
                "status": lifecycle.status_name(request.status),
                "updated_at": now,
            }
            if request.assignee:
                values["assignee"] = request.assignee
            if request.status == crm_pb2.TICKET_STATUS_RESOLVED and request.resolution:
                values["resolution"] = request.resolution
            if request.status in (
                crm_pb2.TICKET_STATUS_RESOLVED,
                crm_pb2.TICKET_STATUS_CLOSED,
                crm_pb2.TICKET_STATUS_CANCELLED,
            ):
                values["open_fault_point"] = None
            move = store.Transition(
                current, request.status, at, request.actor or "unknown", request.note
            )
            store.save_move(conn, request.ticket_id, values, clocks, move)
            moved = store.load_ticket(conn, request.ticket_id)
        log.info(
            "ticket %s: %s -> %s by %s",
            request.ticket_id,
            lifecycle.status_name(current),
            lifecycle.status_name(request.status),
            move.actor,
        )
        return moved.to_proto(now)

    # -- device events -----------------------------------------------------------------

    def on_end_device_event(
        self, event: metering_pb2.EndDeviceEvent
    ) -> crm_pb2.ServiceTicket | None:
        """Open a fault-repair ticket for a power-off or tamper event, once per service
        point: while a fault ticket there is being worked, later events return it.

        Idempotent by the event's mrid too (replayed events open nothing new). Events of
        other kinds, and meters bound to no account, open nothing (``None``).
        """
        name = event.event_type.name
        if name not in FAULT_EVENT_NAMES or not event.mrid:
            return None
        point = self.customers.service_point_of_meter(event.meter.meter_id)
        if point is None:
            log.warning(
                "event %s: meter %s is on no account; no ticket", event.mrid, event.meter.meter_id
            )
            return None
        with read_transaction(self.engine) as conn:
            working = store.open_fault_at(conn, point.service_point_id)
        if working is not None:
            log.info("event %s (%s): fault ticket %s already open", event.mrid, name, working)
            return self.get(working)
        request = crm_pb2.OpenTicketRequest(
            request_id=f"event:{event.mrid}",
            type=crm_pb2.TICKET_TYPE_FAULT_REPAIR,
            priority=crm_pb2.TICKET_PRIORITY_HIGH
            if name == "tamper"
            else crm_pb2.TICKET_PRIORITY_UNSPECIFIED,
            channel=crm_pb2.TICKET_CHANNEL_SYSTEM,
            customer_id=point.customer_id,
            account_id=point.account_id,
            meter_id=event.meter.meter_id,
            title=f"{FAULT_EVENT_NAMES[name]}: 表 {event.meter.meter_id}",
            description=f"{name} reported by the meter ({event.reason})" if event.reason else name,
            site_address=point.address,
            area=point.area,  # type: ignore[arg-type]
            reported_at=event.created_date_time if event.HasField("created_date_time") else None,
        )
        try:
            return self.open(request, actor=self.node_id, service_point=point.service_point_id)
        except sa.exc.IntegrityError:
            # Another writer opened the point's ticket between our look and our insert.
            with read_transaction(self.engine) as conn:
                working = store.open_fault_at(conn, point.service_point_id)
            if working is None:
                raise
            return self.get(working)

    # -- SLA ---------------------------------------------------------------------------

    def overdue(self, *, unalerted_only: bool = False) -> list[store.OverdueClock]:
        """Deadlines passed with their milestone unmet, at the service's clock."""
        with read_transaction(self.engine) as conn:
            return store.overdue_clocks(conn, self.clock(), unalerted_only=unalerted_only)

    def mark_alerted(self, clocks: list[store.OverdueClock]) -> None:
        """Record that these breaches were alerted."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            for clock in clocks:
                store.mark_alerted(conn, clock, now)

    # -- appointments ------------------------------------------------------------------

    def free_slots(self, days: int = 10) -> list[tuple[appointments.Slot, int]]:
        """Slots of the coming ``days`` with places left, and how many."""
        now = self.clock()
        with read_transaction(self.engine) as conn:
            found = []
            for slot in appointments.slots_between(self.calendar, now, days):
                left = self.slot_capacity - store.booked_in_slot(conn, slot.start)
                if left > 0:
                    found.append((slot, left))
            return found

    def book(self, ticket_id: str, start: datetime, *, actor: str) -> appointments.Slot:
        """Book the slot starting at ``start`` for a connection or meter ticket."""
        slot = appointments.slot_starting(self.calendar, start)
        if slot is None:
            raise InvalidArgument("slot", f"no appointment slot starts at {start.isoformat()}")
        now = self.clock()
        if slot.start <= now:
            raise InvalidArgument("slot", f"{slot.label} has already begun")
        with write_transaction(self.engine) as conn:
            ticket = store.load_ticket(conn, ticket_id)
            kind = crm_pb2.TicketType.Value(ticket.row["type"])
            if kind not in _BOOKABLE or ticket.status in lifecycle.FINAL:
                raise lifecycle.TransitionRefused(
                    f"ticket {ticket_id}: a {ticket.row['type']} ticket in "
                    f"{ticket.row['status']} takes no appointment"
                )
            if store.booked_in_slot(conn, slot.start) >= self.slot_capacity:
                raise AlreadyExists("slot", f"{slot.label} is fully booked")
            store.book_slot(conn, ticket_id, slot.start, slot.end, now)
        log.info("ticket %s: appointment %s booked by %s", ticket_id, slot.label, actor)
        return slot


def _validate_open(request: crm_pb2.OpenTicketRequest) -> None:
    if not request.request_id.strip():
        raise InvalidArgument("request_id", "required")
    if request.type == crm_pb2.TICKET_TYPE_UNSPECIFIED:
        raise InvalidArgument("type", "required")
    if not request.title.strip():
        raise InvalidArgument("title", "required")
    if (
        request.type == crm_pb2.TICKET_TYPE_CONNECTION
        and request.connection_scheme == crm_pb2.CONNECTION_SCHEME_UNSPECIFIED
    ):
        raise InvalidArgument("connection_scheme", "required for a CONNECTION ticket")
