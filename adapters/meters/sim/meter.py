"""One simulated meter: energy registers that follow a load profile, and the faults
that change what it reports.

Registers are a pure function of simulated time (the integral of the load shape plus
the fault events that happened before that time), so a live read, a daily freeze and a
load-profile record for the same instant always agree, and history needs no storage.

>>> from datetime import datetime, timezone
>>> m = SimMeter(meter_id="M1", customer=CustomerClass.RESIDENTIAL, mean_kw=0.5,
...              initial_kwh=100.0, seed=7, origin=0.0)
>>> t = datetime(2026, 12, 2, tzinfo=timezone.utc).timestamp()
>>> a, b = m.registers(t)[0][0], m.registers(t + 3600)[0][0]
>>> 0 < b - a < 2
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from powerbus.adapters.meters.sim.clock import LOCAL_OFFSET, local
from powerbus.adapters.meters.sim.faults import COMM_FAULTS, Fault
from powerbus.adapters.meters.sim.profile import RATES, CustomerClass, DayTable, day_table

__all__ = ["Event", "Registers", "SimMeter"]

Registers = tuple[tuple[float, ...], tuple[float, ...]]  # forward, reverse: total + 4 rates
_DAY = 86400.0
_LOCAL = LOCAL_OFFSET.total_seconds()
_ZERO = (0.0,) * (RATES + 1)


@dataclass(slots=True)
class Event:
    """A register fault from ``start`` until ``end`` (None: still going); simulated time."""

    kind: Fault
    start: float
    end: float | None = None
    value: float = 0.0


class SimMeter:
    """A meter's state; ``modulus`` is where its total register wraps (kWh)."""

    def __init__(
        self,
        *,
        meter_id: str,
        customer: CustomerClass,
        mean_kw: float,
        initial_kwh: float,
        seed: int,
        origin: float,
        modulus: float = 1_000_000.0,
    ) -> None:
        self.meter_id = meter_id
        self.customer = customer
        self.mean_kw = mean_kw
        self.seed = seed
        self.modulus = modulus
        self.origin_day = math.floor((origin + _LOCAL) / _DAY)
        self.comm: set[Fault] = set()
        self.events: list[Event] = []
        self.clock_offset = 0.0
        self.relay_open = False  # the supply switch, set by DL/T 645 relay control (1CH)
        self._days: dict[int, tuple[DayTable, float]] = {}
        # the initial reading is spread over the rates like a typical day, so that the
        # total register is always the sum of the rate registers
        shares = day_table(customer, weekend=False, summer=False).by_rate
        start = tuple(initial_kwh * v / sum(shares) for v in shares)
        self._cum: dict[int, tuple[float, ...]] = {self.origin_day: (sum(start), *start)}

    # --- faults ---------------------------------------------------------------------------

    def inject(self, fault: Fault, *, at: float, arg: float | None = None) -> None:
        """Start ``fault`` at simulated time ``at``."""
        if fault in COMM_FAULTS:
            self.comm.add(fault)
        elif fault is Fault.CLOCK_JUMP:
            self.clock_offset += 3600.0 if arg is None else arg
        elif fault is Fault.ROLLOVER:
            # just below the modulus, about an hour's energy from the wrap
            value = self.modulus - self.registers(at)[0][0] - self.mean_kw
            self.events.append(Event(fault, at, value=value))
        else:
            self.events.append(Event(fault, at))

    def clear(self, *, at: float) -> None:
        """End every communication fault and every open frozen/reverse/wire-break event."""
        self.comm.clear()
        for event in self.events:
            if event.end is None and event.kind in (Fault.FROZEN, Fault.REVERSE, Fault.WIRE_BREAK):
                event.end = at

    def active(self, fault: Fault, t: float) -> bool:
        """Whether a register fault is in force at ``t``."""
        return any(
            e.kind is fault and e.start <= t and (e.end is None or t < e.end) for e in self.events
        )

    # --- what the meter shows -------------------------------------------------------------

    def registers(self, t: float) -> Registers:
        """Forward and reverse active energy (total, rates 1-4) at ``t``, kWh."""
        forward, reverse = self._apply(t, len(self.events))
        m = self.modulus
        return tuple(v % m for v in forward), tuple(v % m for v in reverse)

    def power_kw(self, t: float) -> float:
        """Active power at ``t``; negative while energy flows back."""
        day, hour, _ = _split(t)
        table, factor = self._day(day)
        power = self.mean_kw * factor * table.shape[hour]
        return -power if self.active(Fault.REVERSE, t) else power

    def voltage(self, t: float) -> float:
        """Supply voltage: sags a little at the evening peak."""
        _, hour, _ = _split(t)
        return 229.0 - 4.0 * math.sin(math.pi * max(0, hour - 14) / 10) + (self.seed % 7) * 0.3

    def clock(self, t: float) -> datetime:
        """The meter's own clock (naive local time), including any clock jump."""
        return local(t + self.clock_offset)

    # --- internals ------------------------------------------------------------------------

    def _apply(self, t: float, n: int) -> Registers:
        if n == 0:
            return self._base(t)
        event = self.events[n - 1]
        if t < event.start:
            return self._apply(t, n - 1)
        kind = event.kind
        if kind in (Fault.FROZEN, Fault.WIRE_BREAK):
            ended = event.end is not None and t >= event.end
            return self._apply(t if ended else event.start, n - 1)
        if kind is Fault.RESET:
            (f, r), (f0, r0) = self._apply(t, n - 1), self._apply(event.start, n - 1)
            return _minus(f, f0), _minus(r, r0)
        if kind is Fault.ROLLOVER:
            f, r = self._apply(t, n - 1)
            return (f[0] + event.value, *f[1:]), r
        # REVERSE: energy since start (until end) moves from forward to reverse
        f, r = self._apply(t, n - 1)
        until = t if event.end is None else min(t, event.end)
        moved = _minus(self._apply(until, n - 1)[0], self._apply(event.start, n - 1)[0])
        return _minus(f, moved), tuple(a + b for a, b in zip(r, moved, strict=True))

    def _base(self, t: float) -> Registers:
        day, hour, fraction = _split(t)
        table, factor = self._day(day)
        start = self._day_start(day)
        scale = self.mean_kw * factor
        rates = [start[r + 1] + scale * table.before_rate[hour][r] for r in range(RATES)]
        rates[table.rate[hour] - 1] += scale * table.shape[hour] * fraction
        return (sum(rates), *rates), _ZERO

    def _day(self, day: int) -> tuple[DayTable, float]:
        held = self._days.get(day)
        if held is None:
            date = datetime.fromtimestamp(day * _DAY, timezone.utc)
            table = day_table(
                self.customer, weekend=date.weekday() >= 5, summer=date.month in (7, 8)
            )
            # a deterministic day-to-day variation of ±15 %, from the meter's seed
            mixed = (self.seed * 6364136223846793005 + day * 1442695040888963407) % (1 << 64)
            held = (table, 0.85 + 0.3 * ((mixed >> 33) % 1000) / 1000)
            self._days[day] = held
        return held

    def _day_start(self, day: int) -> tuple[float, ...]:
        """Registers (total, rates) at local midnight starting ``day``."""
        if day in self._cum:
            return self._cum[day]
        known = max((d for d in self._cum if d < day), default=self.origin_day)
        values = self._cum[known] if day > known else self._cum[self.origin_day]
        for d in range(known, day):
            table, factor = self._day(d)
            add = [self.mean_kw * factor * v for v in table.by_rate]
            rates = [values[r + 1] + add[r] for r in range(RATES)]
            values = (sum(rates), *rates)
            self._cum[d + 1] = values
        return self._cum.get(day, values)


def _split(t: float) -> tuple[int, int, float]:
    """(local day number, local hour, fraction of the hour) of POSIX seconds ``t``."""
    local_seconds = t + _LOCAL
    day = math.floor(local_seconds / _DAY)
    in_day = local_seconds - day * _DAY
    hour = min(int(in_day // 3600), 23)
    return day, hour, (in_day - hour * 3600) / 3600


def _minus(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x - y for x, y in zip(a, b, strict=True))
