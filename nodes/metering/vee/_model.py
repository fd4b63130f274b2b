"""VEE's records: what it is given (a meter's spec, interval and register reads) and what
it returns (checked interval values, findings, counts).

Energy is integer Wh throughout, so sums are exact; the proto edge converts to kWh
doubles once (:mod:`powerbus.nodes.metering.convert`). Times are aware UTC datetimes; an
interval is named by its end, as in CIM: ``(end − interval, end]``.

>>> from datetime import datetime, timezone
>>> v = IntervalValue(end=datetime(2026, 12, 1, 0, 15, tzinfo=timezone.utc), wh=420)
>>> v.quality, v.estimated, v.kwh
(<QualityCode.VALID: 'valid'>, False, Decimal('0.420'))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from powerbus.nodes.metering.errors import InvalidReading
from powerbus.nodes.metering.vee._enums import EstimationMethod, QualityCode, VeeAction, VeeRule

__all__ = [
    "COUNTER_MODULUS",
    "IntervalRead",
    "IntervalValue",
    "MeterSpec",
    "RegisterRead",
    "VeeFinding",
    "VeeOutcome",
]

COUNTER_MODULUS = 2**32
"""Pulse terminals keep 32-bit unsigned counters (RTU-DI8: max 4,294,967,295)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class MeterSpec:
    """What VEE needs to know about a meter (from ``metering.v1.Meter``).

    ``rollover_wh`` is where a register wraps (0: never); ``max_demand_w`` bounds an
    interval's energy (0: no bound); ``pulses_per_kwh`` > 0 makes the meter a pulse
    channel whose register reads are raw counts wrapping at ``counter_modulus``.
    """

    meter_id: str
    interval: timedelta = timedelta(minutes=15)
    max_demand_w: int = 0
    rollover_wh: int = 0
    pulses_per_kwh: int = 0
    counter_modulus: int = COUNTER_MODULUS
    net_metered: bool = False

    def __post_init__(self) -> None:
        if not self.meter_id:
            raise InvalidReading("meter.meter_id", "empty")
        if self.interval <= timedelta(0) or timedelta(days=1) % self.interval:
            raise InvalidReading("meter.interval", f"must divide a day, got {self.interval}")
        for name in ("max_demand_w", "rollover_wh", "pulses_per_kwh"):
            if getattr(self, name) < 0:
                raise InvalidReading(f"meter.{name}", "must not be negative")

    @property
    def is_pulse_channel(self) -> bool:
        return self.pulses_per_kwh > 0

    def max_wh(self, intervals: int = 1) -> int | None:
        """Most energy ``intervals`` intervals can hold at max demand; None if unbounded."""
        if not self.max_demand_w:
            return None
        seconds = int(self.interval.total_seconds()) * intervals
        return self.max_demand_w * seconds // 3600


@dataclass(frozen=True, slots=True)
class IntervalRead:
    """One interval value as read (a load-profile record or a submitted DELTA reading).

    ``length`` is the interval length the source reported, when it reports one.
    """

    end: datetime
    wh: int
    length: timedelta | None = None


@dataclass(frozen=True, slots=True)
class RegisterRead:
    """A cumulative register read: Wh, or pulses on a pulse channel.

    ``meter_time`` is the meter's clock when read, if it has one (TIME_TOLERANCE).
    """

    at: datetime
    value: int
    meter_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class IntervalValue:
    """One checked interval: the value to store, its quality, and what was read.

    ``wh`` is None only where nothing may be stored as a number: a meter reset (not
    guessed) or a gap VEE could not fill. ``raw_wh`` is what was read (None for a gap).
    """

    end: datetime
    wh: int | None
    quality: QualityCode = QualityCode.VALID
    rule: VeeRule = VeeRule.UNSPECIFIED
    method: EstimationMethod = EstimationMethod.UNSPECIFIED
    raw_wh: int | None = None
    detail: str = ""

    @property
    def estimated(self) -> bool:
        """True for values VEE computed (ESTIMATED or SUBSTITUTED)."""
        return self.quality.edited

    @property
    def kwh(self) -> Decimal | None:
        """The value in kWh, exactly."""
        return None if self.wh is None else Decimal(self.wh).scaleb(-3)


@dataclass(frozen=True, slots=True)
class VeeFinding:
    """One thing a rule found; ``count`` consecutive values from ``time_stamp`` on."""

    rule: VeeRule
    action: VeeAction
    time_stamp: datetime
    count: int = 1
    raw_wh: int | None = None
    final_wh: int | None = None
    method: EstimationMethod = EstimationMethod.UNSPECIFIED
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VeeOutcome:
    """VEE's result for one meter over one period.

    ``accepted`` counts values stored as read (VALID, SUSPECT); ``estimated`` values VEE
    computed (E, S, gap fills included); ``rejected`` values read but not stored as read.
    """

    meter_id: str
    intervals: tuple[IntervalValue, ...]
    findings: tuple[VeeFinding, ...] = field(default=())
    accepted: int = 0
    estimated: int = 0
    rejected: int = 0
    intervals_expected: int = 0
    intervals_received: int = 0

    @property
    def complete(self) -> bool:
        """True when every expected interval has a value to bill."""
        return all(v.wh is not None for v in self.intervals)

    @property
    def total_wh(self) -> int:
        """Energy of the intervals that have a value (short when not ``complete``)."""
        return sum(v.wh for v in self.intervals if v.wh is not None)
