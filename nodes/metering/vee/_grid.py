"""VEE's working state: the period as a grid of interval slots, each holding what was read
and what VEE decided, and the findings so far. Rules mutate it; the engine freezes it
into :class:`~powerbus.nodes.metering.vee.IntervalValue` s at the end.

Boundary ``j`` is ``start + j × interval``; slot ``s`` is the interval ending at boundary
``s + 1``. A register read stands for the boundary nearest to it: the node reads each
meter at the same offset in every interval, so the deltas still cover whole intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone, tzinfo

from powerbus.nodes.metering.errors import InvalidReading
from powerbus.nodes.metering.vee._enums import EstimationMethod, QualityCode, VeeAction, VeeRule
from powerbus.nodes.metering.vee._model import IntervalValue, VeeFinding

__all__ = ["Grid", "Slot", "Work"]


class Grid:
    """The expected interval ends of ``[start, end)``, ``interval`` apart."""

    __slots__ = ("count", "interval", "seconds", "start")

    def __init__(self, start: datetime, end: datetime, interval: timedelta) -> None:
        for name, t in (("period.start", start), ("period.end", end)):
            if t.tzinfo is None:
                raise InvalidReading(name, f"naive datetime {t.isoformat()}")
        if end <= start:
            raise InvalidReading("period", f"empty or reversed: {start} .. {end}")
        if (end - start) % interval:
            raise InvalidReading("period", f"not a whole number of {interval} intervals")
        self.start = start
        self.interval = interval
        self.seconds = int(interval.total_seconds())
        self.count = (end - start) // interval

    def boundary(self, j: int) -> datetime:
        return self.start + j * self.interval

    def slot_of_end(self, end: datetime) -> int | None:
        """The slot ending exactly at ``end``; None when ``end`` is off the grid."""
        offset = (end - self.start).total_seconds()
        j, rest = divmod(int(offset), self.seconds)
        if rest or offset != int(offset) or not 1 <= j <= self.count:
            return None
        return j - 1

    def nearest_boundary(self, at: datetime) -> int | None:
        """The boundary nearest ``at`` (ties go earlier), None outside the period."""
        offset = (at - self.start).total_seconds()
        j = int((offset + self.seconds / 2 - 1e-9) // self.seconds)
        return j if 0 <= j <= self.count else None


class Slot:
    """One expected interval: what was read and what VEE made of it."""

    __slots__ = ("detail", "end", "locked", "method", "quality", "raw", "rule", "wh")

    def __init__(self, end: datetime) -> None:
        self.end = end
        self.raw: int | None = None  # as read; None for a gap
        self.wh: int | None = None  # to store; None while missing or rejected
        self.quality = QualityCode.VALID
        self.rule = VeeRule.UNSPECIFIED
        self.method = EstimationMethod.UNSPECIFIED
        self.detail = ""
        # A slot whose energy must not be guessed (a meter reset in its span).
        self.locked = False

    @property
    def good(self) -> bool:
        """Has a value read (or worked out) that estimation may lean on."""
        return self.wh is not None and self.quality is not QualityCode.ESTIMATED

    def flag(self, rule: VeeRule, detail: str) -> None:
        """Keep the value as read, SUSPECT; the first rule to flag names it."""
        if self.quality is QualityCode.VALID:
            self.quality, self.rule, self.detail = QualityCode.SUSPECT, rule, detail

    def reject(self, rule: VeeRule, detail: str) -> None:
        """Drop the value (the raw one stays); estimation may fill the slot."""
        self.wh, self.quality, self.rule, self.detail = None, QualityCode.VALID, rule, detail

    def freeze(self) -> IntervalValue:
        quality = self.quality
        if self.wh is None and quality is QualityCode.VALID:
            quality = QualityCode.SUSPECT  # nothing to bill: never VALID
        return IntervalValue(
            self.end, self.wh, quality, self.rule, self.method, self.raw, self.detail
        )


class Work:
    """Slots of one meter's period, findings and counts, as the rules go."""

    __slots__ = ("_days", "findings", "grid", "rejected", "slots")

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.slots = [Slot(grid.boundary(s + 1)) for s in range(grid.count)]
        self.findings: list[VeeFinding] = []
        self.rejected = 0
        self._days: list[list[int]] | None = None

    def local_days(self, zone: tzinfo) -> list[list[int]]:
        """Slot indexes grouped by the local day their interval starts in.

        Computed from the local midnights in the period rather than slot by slot, so a
        meter-day costs two time-zone conversions, not 96 (DST days come out 23 or 25
        hours long by themselves)."""
        if self._days is None:
            grid = self.grid
            days: list[list[int]] = []
            first = 0
            day = grid.start.astimezone(zone).date()
            while first < grid.count:
                day += timedelta(days=1)
                midnight = datetime.combine(day, time(0), zone).astimezone(timezone.utc)
                # Slots whose start is before the next local midnight.
                last = min(grid.count, -(-(midnight - grid.start) // grid.interval))
                days.append(list(range(first, last)))
                first = last
            self._days = days
        return self._days

    def find(
        self,
        rule: VeeRule,
        action: VeeAction,
        first: int,
        *,
        count: int = 1,
        detail: str = "",
        method: EstimationMethod = EstimationMethod.UNSPECIFIED,
    ) -> None:
        """Record a finding about ``count`` slots from ``first`` on."""
        slot = self.slots[first]
        final = slot.wh if action in (VeeAction.ESTIMATED, VeeAction.SUBSTITUTED) else None
        self.findings.append(
            VeeFinding(rule, action, slot.end, count, slot.raw, final, method, detail)
        )

    def runs(self, predicate: Callable[[Slot], bool]) -> list[tuple[int, int]]:
        """Maximal runs ``(first, length)`` of slots for which ``predicate(slot)`` holds."""
        found: list[tuple[int, int]] = []
        start = None
        for i, slot in enumerate(self.slots):
            if predicate(slot):
                if start is None:
                    start = i
            elif start is not None:
                found.append((start, i - start))
                start = None
        if start is not None:
            found.append((start, len(self.slots) - start))
        return found
