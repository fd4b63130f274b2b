"""SLA clocks of service tickets, from the utility's published service commitments
(国家电网 供电服务"十项承诺"; FACTS §3f):

- fault repair (故障报修): arrival within 45 / 90 / 120 minutes (urban / rural / remote),
  restoration within 3 h (urban) or 4 h (rural) of arrival. No restoration time is
  published for remote areas, so remote tickets get no RESTORATION deadline;
- complaints: first contact within 1 working day, answer within 7 working days;
- meter checks: result within 5 working days;
- new connections (业扩): 5 / 6 / 22 / 32 working days by connection scheme;
- billing queries have no published commitment and no deadline.

Pure functions over :class:`SlaClock`; the clock ("now") is always passed in.

>>> from datetime import datetime, timezone
>>> t0 = datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc)
>>> [(c.milestone, c.due_at and c.due_at.strftime("%H:%M"))
...  for c in initial_clocks(FAULT, RURAL, 0, t0, None)]
[(2, '09:30'), (3, None)]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm.tickets.calendar import WorkingCalendar

__all__ = [
    "ARRIVAL_MINUTES",
    "CONNECTION_WORKING_DAYS",
    "RESTORATION_HOURS",
    "SlaClock",
    "after_transition",
    "initial_clocks",
]

FAULT = crm_pb2.TICKET_TYPE_FAULT_REPAIR
URBAN, RURAL, REMOTE = (
    crm_pb2.SERVICE_AREA_URBAN,
    crm_pb2.SERVICE_AREA_RURAL,
    crm_pb2.SERVICE_AREA_REMOTE,
)
ARRIVAL = crm_pb2.SLA_MILESTONE_ARRIVAL
RESTORATION = crm_pb2.SLA_MILESTONE_RESTORATION
FIRST_CONTACT = crm_pb2.SLA_MILESTONE_FIRST_CONTACT
RESOLUTION = crm_pb2.SLA_MILESTONE_RESOLUTION

ARRIVAL_MINUTES: dict[int, int] = {URBAN: 45, RURAL: 90, REMOTE: 120}
RESTORATION_HOURS: dict[int, int] = {URBAN: 3, RURAL: 4}
CONNECTION_WORKING_DAYS: dict[int, int] = {
    crm_pb2.CONNECTION_SCHEME_RESIDENTIAL: 5,
    crm_pb2.CONNECTION_SCHEME_LOW_VOLTAGE_NON_RESIDENTIAL: 6,
    crm_pb2.CONNECTION_SCHEME_HIGH_VOLTAGE_SINGLE_SUPPLY: 22,
    crm_pb2.CONNECTION_SCHEME_HIGH_VOLTAGE_DUAL_SUPPLY: 32,
}
_COMPLAINT_CONTACT_DAYS = 1
_COMPLAINT_ANSWER_DAYS = 7
_METER_CHECK_DAYS = 5


@dataclass(frozen=True)
class SlaClock:
    """One deadline of a ticket: when it is due (``None`` until computable) and met."""

    milestone: int
    due_at: datetime | None
    met_at: datetime | None = None

    def breached(self, now: datetime) -> bool:
        """Met late, or still open past its deadline at ``now``."""
        if self.due_at is None:
            return False
        return (self.met_at or now) > self.due_at

    def overdue(self, now: datetime) -> bool:
        """Still open and past its deadline at ``now`` (what the monitor alerts on)."""
        return self.met_at is None and self.due_at is not None and now > self.due_at

    def to_proto(self, now: datetime) -> crm_pb2.SlaTarget:
        target = crm_pb2.SlaTarget(milestone=self.milestone, breached=self.breached(now))  # type: ignore[arg-type]
        if self.due_at is not None:
            target.due_at.FromDatetime(self.due_at)
        if self.met_at is not None:
            target.met_at.FromDatetime(self.met_at)
        return target


def initial_clocks(
    ticket_type: int,
    area: int,
    scheme: int,
    reported_at: datetime,
    calendar: WorkingCalendar | None,
) -> list[SlaClock]:
    """The deadlines a new ticket starts with, counted from ``reported_at``.

    ``calendar`` is needed for working-day commitments (every type but fault repair).
    """
    if ticket_type == FAULT:
        arrival = reported_at + timedelta(minutes=ARRIVAL_MINUTES[area])
        return [SlaClock(ARRIVAL, arrival), SlaClock(RESTORATION, None)]
    days = _working_days(ticket_type, scheme)
    if not days:
        return []
    if calendar is None:
        raise ValueError("working-day deadlines need a calendar")
    clocks = []
    if ticket_type == crm_pb2.TICKET_TYPE_COMPLAINT:
        clocks.append(
            SlaClock(FIRST_CONTACT, calendar.deadline(reported_at, _COMPLAINT_CONTACT_DAYS))
        )
    clocks.append(SlaClock(RESOLUTION, calendar.deadline(reported_at, days)))
    return clocks


def _working_days(ticket_type: int, scheme: int) -> int:
    if ticket_type == crm_pb2.TICKET_TYPE_COMPLAINT:
        return _COMPLAINT_ANSWER_DAYS
    if ticket_type == crm_pb2.TICKET_TYPE_METER_CHECK:
        return _METER_CHECK_DAYS
    if ticket_type == crm_pb2.TICKET_TYPE_CONNECTION:
        return CONNECTION_WORKING_DAYS[scheme]
    return 0


_CONTACTING = {
    crm_pb2.TICKET_STATUS_ON_SITE,
    crm_pb2.TICKET_STATUS_IN_PROGRESS,
    crm_pb2.TICKET_STATUS_RESOLVED,
}


def after_transition(
    clocks: list[SlaClock], to_status: int, at: datetime, area: int
) -> list[SlaClock]:
    """The clocks after a move to ``to_status`` at ``at``.

    ON_SITE meets ARRIVAL and starts RESTORATION; RESOLVED meets RESTORATION and
    RESOLUTION (and ARRIVAL, if the crew's arrival was never recorded); any contact with
    the customer meets FIRST_CONTACT; reopening (→ IN_PROGRESS from RESOLVED) unmeets
    RESTORATION and RESOLUTION, which keep their deadlines.
    """
    out: list[SlaClock] = []
    arrived: datetime | None = None
    for clock in clocks:
        if (
            clock.milestone == ARRIVAL
            and clock.met_at is None
            and to_status
            in (
                crm_pb2.TICKET_STATUS_ON_SITE,
                crm_pb2.TICKET_STATUS_RESOLVED,
            )
        ):
            clock = replace(clock, met_at=at)
        if clock.milestone == ARRIVAL:
            arrived = clock.met_at
        out.append(clock)
    result = []
    for clock in out:
        if clock.milestone == RESTORATION and clock.due_at is None and arrived is not None:
            hours = RESTORATION_HOURS.get(area)
            if hours is not None:
                clock = replace(clock, due_at=arrived + timedelta(hours=hours))
        if clock.milestone == FIRST_CONTACT and clock.met_at is None and to_status in _CONTACTING:
            clock = replace(clock, met_at=at)
        if clock.milestone in (RESTORATION, RESOLUTION):
            if to_status == crm_pb2.TICKET_STATUS_RESOLVED and clock.met_at is None:
                clock = replace(clock, met_at=at)
            elif to_status == crm_pb2.TICKET_STATUS_IN_PROGRESS and clock.met_at is not None:
                clock = replace(clock, met_at=None)
        result.append(clock)
    return result
