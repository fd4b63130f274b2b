"""Tickets, their SLA clocks and their transitions in SQLAlchemy.

Functions take an open connection so the ticket service can read, decide and write in
one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from powerbus.bus.kernel.errors import NotFound
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm.store.records import timestamp, utc
from powerbus.nodes.crm.store.tables import appointments, sla_targets, ticket_transitions, tickets
from powerbus.nodes.crm.tickets.sla import SlaClock

__all__ = [
    "OverdueClock",
    "StoredTicket",
    "Transition",
    "book_slot",
    "booked_in_slot",
    "find_request",
    "insert_ticket",
    "list_ticket_ids",
    "load_ticket",
    "mark_alerted",
    "open_fault_at",
    "overdue_clocks",
    "save_move",
]


@dataclass(frozen=True)
class Transition:
    """One status change: from, to, when, who and why."""

    from_status: int
    to_status: int
    at: datetime
    actor: str
    note: str

    def to_proto(self) -> crm_pb2.TicketTransition:
        return crm_pb2.TicketTransition(
            from_status=self.from_status,  # type: ignore[arg-type]
            to_status=self.to_status,  # type: ignore[arg-type]
            at=timestamp(self.at),
            actor=self.actor,
            note=self.note,
        )


@dataclass(frozen=True)
class StoredTicket:
    """A ticket as stored: its row, its clocks and its history (oldest first)."""

    row: Mapping[str, Any]
    clocks: list[SlaClock]
    history: list[Transition]

    @property
    def status(self) -> int:
        return crm_pb2.TicketStatus.Value(self.row["status"])

    @property
    def area(self) -> int:
        return crm_pb2.ServiceArea.Value(self.row["area"])

    def to_proto(self, now: datetime) -> crm_pb2.ServiceTicket:
        """The wire ticket, with ``breached`` evaluated at ``now``."""
        r = self.row
        return crm_pb2.ServiceTicket(
            ticket_id=r["ticket_id"],
            request_id=r["request_id"],
            type=crm_pb2.TicketType.Value(r["type"]),
            status=self.status,  # type: ignore[arg-type]
            priority=crm_pb2.TicketPriority.Value(r["priority"]),
            channel=crm_pb2.TicketChannel.Value(r["channel"]),
            customer_id=r["customer_id"],
            account_id=r["account_id"],
            meter_id=r["meter_id"],
            title=r["title"],
            description=r["description"],
            site_address=r["site_address"],
            area=self.area,  # type: ignore[arg-type]
            connection_scheme=crm_pb2.ConnectionScheme.Value(r["connection_scheme"]),
            assignee=r["assignee"],
            reported_at=timestamp(r["reported_at"]),
            created_at=timestamp(r["created_at"]),
            updated_at=timestamp(r["updated_at"]),
            sla_targets=[c.to_proto(now) for c in self.clocks],
            history=[t.to_proto() for t in self.history],
            resolution=r["resolution"],
        )


def find_request(conn: Connection, request_id: str) -> tuple[str, str] | None:
    """``(ticket_id, request_hash)`` of the ticket ``request_id`` opened, if any."""
    row = conn.execute(
        sa.select(tickets.c.ticket_id, tickets.c.request_hash).where(
            tickets.c.request_id == request_id
        )
    ).first()
    return None if row is None else (row[0], row[1])


def open_fault_at(conn: Connection, service_point_id: str) -> str | None:
    """The fault ticket being worked at a service point, if any."""
    return conn.execute(
        sa.select(tickets.c.ticket_id).where(tickets.c.open_fault_point == service_point_id)
    ).scalar_one_or_none()


def _next_due(clocks: Sequence[SlaClock]) -> datetime | None:
    due = [c.due_at for c in clocks if c.met_at is None and c.due_at is not None]
    return min(due) if due else None


def insert_ticket(
    conn: Connection, values: Mapping[str, Any], clocks: Sequence[SlaClock], first: Transition
) -> None:
    """Store a new ticket with its clocks and its first transition."""
    conn.execute(tickets.insert().values(next_due_at=_next_due(clocks), **values))
    _write_clocks(conn, values["ticket_id"], clocks)
    _write_transition(conn, values["ticket_id"], first)


def save_move(
    conn: Connection,
    ticket_id: str,
    values: Mapping[str, Any],
    clocks: Sequence[SlaClock],
    transition: Transition,
) -> None:
    """Store a status move: the changed columns, the clocks and the transition."""
    conn.execute(
        tickets.update()
        .where(tickets.c.ticket_id == ticket_id)
        .values(next_due_at=_next_due(clocks), **values)
    )
    conn.execute(sla_targets.delete().where(sla_targets.c.ticket_id == ticket_id))
    _write_clocks(conn, ticket_id, clocks)
    _write_transition(conn, ticket_id, transition)


def _write_clocks(conn: Connection, ticket_id: str, clocks: Sequence[SlaClock]) -> None:
    for clock in clocks:
        conn.execute(
            sla_targets.insert().values(
                ticket_id=ticket_id,
                milestone=crm_pb2.SlaMilestone.Name(clock.milestone),  # type: ignore[arg-type]
                due_at=clock.due_at,
                met_at=clock.met_at,
            )
        )


def _write_transition(conn: Connection, ticket_id: str, t: Transition) -> None:
    conn.execute(
        ticket_transitions.insert().values(
            ticket_id=ticket_id,
            from_status=crm_pb2.TicketStatus.Name(t.from_status),  # type: ignore[arg-type]
            to_status=crm_pb2.TicketStatus.Name(t.to_status),  # type: ignore[arg-type]
            at=t.at,
            actor=t.actor,
            note=t.note,
        )
    )


def load_ticket(conn: Connection, ticket_id: str) -> StoredTicket:
    """A stored ticket; :class:`NotFound` naming it otherwise."""
    row = (
        conn.execute(sa.select(tickets).where(tickets.c.ticket_id == ticket_id)).mappings().first()
    )
    if row is None:
        raise NotFound(f"ticket {ticket_id!r} not found")
    order = {name: i for i, name in enumerate(crm_pb2.SlaMilestone.keys())}
    clock_rows = (
        conn.execute(sa.select(sla_targets).where(sla_targets.c.ticket_id == ticket_id))
        .mappings()
        .all()
    )
    clocks = sorted(
        (
            SlaClock(
                crm_pb2.SlaMilestone.Value(c["milestone"]),
                None if c["due_at"] is None else utc(c["due_at"]),
                None if c["met_at"] is None else utc(c["met_at"]),
            )
            for c in clock_rows
        ),
        key=lambda c: order[crm_pb2.SlaMilestone.Name(c.milestone)],  # type: ignore[arg-type]
    )
    history = [
        Transition(
            crm_pb2.TicketStatus.Value(h["from_status"]),
            crm_pb2.TicketStatus.Value(h["to_status"]),
            utc(h["at"]),
            h["actor"],
            h["note"],
        )
        for h in conn.execute(
            sa.select(ticket_transitions)
            .where(ticket_transitions.c.ticket_id == ticket_id)
            .order_by(ticket_transitions.c.id)
        ).mappings()
    ]
    return StoredTicket(row=dict(row), clocks=clocks, history=history)


def list_ticket_ids(
    conn: Connection, request: crm_pb2.ListTicketsRequest, *, now: datetime, offset: int, size: int
) -> tuple[list[str], int]:
    """Ids of one page of matching tickets, most urgent deadline first, and the total."""
    query = sa.select(tickets.c.ticket_id)
    if request.customer_id:
        query = query.where(tickets.c.customer_id == request.customer_id)
    if request.account_id:
        query = query.where(tickets.c.account_id == request.account_id)
    if request.assignee:
        query = query.where(tickets.c.assignee == request.assignee)
    if request.statuses:
        names = [crm_pb2.TicketStatus.Name(s) for s in request.statuses]
        query = query.where(tickets.c.status.in_(names))
    if request.types:
        query = query.where(tickets.c.type.in_([crm_pb2.TicketType.Name(t) for t in request.types]))
    if request.breached_only:
        late = sa.select(sla_targets.c.ticket_id).where(
            sa.or_(
                sa.and_(
                    sla_targets.c.met_at.is_not(None), sla_targets.c.met_at > sla_targets.c.due_at
                ),
                sa.and_(sla_targets.c.met_at.is_(None), sla_targets.c.due_at < now),
            )
        )
        query = query.where(tickets.c.ticket_id.in_(late))
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    ordered = query.order_by(
        tickets.c.next_due_at.asc().nulls_last(), tickets.c.reported_at, tickets.c.ticket_id
    )
    ids = conn.execute(ordered.offset(offset).limit(size)).scalars().all()
    return list(ids), int(total)


@dataclass(frozen=True)
class OverdueClock:
    """An SLA deadline passed with the milestone unmet."""

    ticket_id: str
    milestone: int
    due_at: datetime
    ticket_type: int
    area: int


def overdue_clocks(conn: Connection, now: datetime, *, unalerted_only: bool) -> list[OverdueClock]:
    """Unmet deadlines before ``now`` of tickets still being worked, oldest first."""
    query = (
        sa.select(
            sla_targets.c.ticket_id,
            sla_targets.c.milestone,
            sla_targets.c.due_at,
            tickets.c.type,
            tickets.c.area,
        )
        .join(tickets, tickets.c.ticket_id == sla_targets.c.ticket_id)
        .where(sla_targets.c.met_at.is_(None))
        .where(sla_targets.c.due_at < now)
        .where(tickets.c.status.not_in(["TICKET_STATUS_CLOSED", "TICKET_STATUS_CANCELLED"]))
        .order_by(sla_targets.c.due_at, sla_targets.c.ticket_id)
    )
    if unalerted_only:
        query = query.where(sla_targets.c.alerted_at.is_(None))
    return [
        OverdueClock(
            ticket_id=r[0],
            milestone=crm_pb2.SlaMilestone.Value(r[1]),
            due_at=utc(r[2]),
            ticket_type=crm_pb2.TicketType.Value(r[3]),
            area=crm_pb2.ServiceArea.Value(r[4]),
        )
        for r in conn.execute(query)
    ]


def mark_alerted(conn: Connection, clock: OverdueClock, at: datetime) -> None:
    """Remember that ``clock``'s breach was alerted, so it is alerted once."""
    conn.execute(
        sla_targets.update()
        .where(sla_targets.c.ticket_id == clock.ticket_id)
        .where(sla_targets.c.milestone == crm_pb2.SlaMilestone.Name(clock.milestone))  # type: ignore[arg-type]
        .values(alerted_at=at)
    )


def booked_in_slot(conn: Connection, slot_start: datetime) -> int:
    """How many appointments hold the slot starting at ``slot_start``."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(appointments.c.slot_start == slot_start)
        ).scalar_one()
    )


def book_slot(
    conn: Connection, ticket_id: str, start: datetime, end: datetime, at: datetime
) -> None:
    """Give a ticket the slot ``[start, end)``, replacing any it held."""
    conn.execute(appointments.delete().where(appointments.c.ticket_id == ticket_id))
    conn.execute(
        appointments.insert().values(
            ticket_id=ticket_id, slot_start=start, slot_end=end, booked_at=at
        )
    )
