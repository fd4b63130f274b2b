"""Appointment time slots for new-connection and installation visits (业扩 site survey,
meter installation): half-day windows on working days, a fixed number of crews per slot.

>>> from datetime import date
>>> cal = WorkingCalendar.shipped()
>>> [s.label for s in day_slots(cal, date(2026, 10, 9))]   # a Friday
['2026-10-09 09:00-12:00', '2026-10-09 14:00-17:30']
>>> day_slots(cal, date(2026, 10, 5))                      # 国庆
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from powerbus.nodes.crm.tickets.calendar import WorkingCalendar

__all__ = ["SLOT_HOURS", "Slot", "day_slots", "slot_starting", "slots_between"]

# Morning and afternoon visits, local time; crews take lunch 12:00-14:00.
SLOT_HOURS = ((time(9, 0), time(12, 0)), (time(14, 0), time(17, 30)))


@dataclass(frozen=True)
class Slot:
    """A visit window ``[start, end)`` in UTC."""

    start: datetime
    end: datetime
    label: str
    """Local ``YYYY-MM-DD HH:MM-HH:MM``, for people."""


def day_slots(calendar: WorkingCalendar, day: date) -> list[Slot]:
    """The slots of a local date: none on days off."""
    if not calendar.is_working_day(day):
        return []
    slots = []
    for begin, finish in SLOT_HOURS:
        start = datetime.combine(day, begin, tzinfo=calendar.zone)
        end = datetime.combine(day, finish, tzinfo=calendar.zone)
        label = f"{day.isoformat()} {begin:%H:%M}-{finish:%H:%M}"
        slots.append(Slot(start.astimezone(timezone.utc), end.astimezone(timezone.utc), label))
    return slots


def slots_between(calendar: WorkingCalendar, after: datetime, days: int) -> list[Slot]:
    """Slots starting after ``after`` within the next ``days`` local dates."""
    first = after.astimezone(calendar.zone).date()
    found: list[Slot] = []
    for offset in range(days + 1):
        found.extend(
            s for s in day_slots(calendar, first + timedelta(days=offset)) if s.start > after
        )
    return found


def slot_starting(calendar: WorkingCalendar, start: datetime) -> Slot | None:
    """The slot that starts exactly at ``start``, or ``None`` if no slot does."""
    for slot in day_slots(calendar, start.astimezone(calendar.zone).date()):
        if slot.start == start:
            return slot
    return None
