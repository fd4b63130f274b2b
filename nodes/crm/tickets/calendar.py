"""The working-day calendar: weekends, public holidays and make-up working days (调休).

Working-day commitments (业扩 5/6/22/32 days, complaint answers in 7, meter checks in 5)
count whole working days after the day of the report, in local time: a deadline of N
working days ends at midnight after the N-th working day following the report date.

>>> cal = WorkingCalendar.shipped()
>>> cal.is_working_day(date(2026, 2, 14))     # a Saturday worked before 春节
True
>>> cal.is_working_day(date(2026, 2, 16))     # 春节
False
>>> cal.add_working_days(date(2026, 2, 13), 1)  # Friday + 1: Saturday 14th is worked
datetime.date(2026, 2, 14)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from powerbus.bus.kernel.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["LOCAL_ZONE", "WorkingCalendar"]

log = logging.getLogger(__name__)

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
_SHIPPED = "holidays.toml"


@dataclass(frozen=True)
class WorkingCalendar:
    """Which dates are working days; built from a holidays file (see ``data/holidays.toml``)."""

    holidays: frozenset[date]
    workdays: frozenset[date]
    """Weekend dates that are worked (调休上班)."""
    years: frozenset[int]
    """Years the file covers; outside them only weekends are off."""
    zone: ZoneInfo = LOCAL_ZONE
    _warned: set[int] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def shipped(cls) -> WorkingCalendar:
        """The calendar shipped with the node (``powerbus.nodes.crm/data/holidays.toml``)."""
        text = (
            resources.files("powerbus.nodes.crm")
            .joinpath("data")
            .joinpath(_SHIPPED)
            .read_text("utf-8")
        )
        return cls.parse(text, source=_SHIPPED)

    @classmethod
    def load(cls, path: Path | None) -> WorkingCalendar:
        """The calendar in ``path``, or the shipped one for ``None``."""
        if path is None:
            return cls.shipped()
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"calendar: cannot read {path}: {exc.strerror}") from None
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, *, source: str) -> WorkingCalendar:
        """Parse a holidays file: ``[YEAR] holidays = [...] workdays = [...]`` of ISO dates."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"calendar: {source}: {exc}") from None
        holidays: set[date] = set()
        workdays: set[date] = set()
        for year_text, table in data.items():
            year = _year(year_text, source)
            holidays |= _dates(table.get("holidays", []), year, f"{source} [{year}] holidays")
            workdays |= _dates(table.get("workdays", []), year, f"{source} [{year}] workdays")
        clash = holidays & workdays
        if clash:
            raise ConfigError(f"calendar: {source}: {min(clash)} is both a holiday and a workday")
        years = frozenset(_year(y, source) for y in data)
        return cls(holidays=frozenset(holidays), workdays=frozenset(workdays), years=years)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is worked: a weekday not a holiday, or a make-up workday."""
        if day.year not in self.years and day.year not in self._warned:
            self._warned.add(day.year)
            log.warning("holiday calendar has no year %d: counting Monday-Friday only", day.year)
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        day, left = start, days
        while left:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def deadline(self, reported_at: datetime, working_days: int) -> datetime:
        """The UTC instant ``working_days`` working days after ``reported_at``: local
        midnight at the end of the last of them."""
        local_day = reported_at.astimezone(self.zone).date()
        last = self.add_working_days(local_day, working_days)
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=self.zone)
        return end.astimezone(timezone.utc)

    def working_days_in(self, start: date, end: date) -> Iterable[date]:
        """The working days in ``[start, end)``."""
        day = start
        while day < end:
            if self.is_working_day(day):
                yield day
            day += timedelta(days=1)


def _year(text: str, source: str) -> int:
    if not text.isdigit() or len(text) != 4:
        raise ConfigError(f"calendar: {source}: table [{text}] is not a year")
    return int(text)


def _dates(values: object, year: int, where: str) -> set[date]:
    if not isinstance(values, list):
        raise ConfigError(f"calendar: {where}: expected a list of dates")
    found: set[date] = set()
    for value in values:
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"calendar: {where}: not a date: {value!r}") from None
        if day.year != year:
            raise ConfigError(f"calendar: {where}: {day} is not in {year}")
        found.add(day)
    return found
