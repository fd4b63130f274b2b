"""What the readings store takes and gives back.

>>> from datetime import datetime, timezone
>>> from powerbus.nodes.metering.vee import IntervalValue
>>> end = datetime(2026, 12, 1, 0, 15, tzinfo=timezone.utc)
>>> r = IntervalRecord("M1", FORWARD_DELTA_KWH, IntervalValue(end, 420))
>>> r.key == ("M1", "0.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0", end)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from powerbus.nodes.metering.vee import IntervalValue, QualityCode, VeeRule

__all__ = [
    "FORWARD_BULK_KWH",
    "FORWARD_DELTA_KWH",
    "REACTIVE_Q1_DELTA_KVARH",
    "REACTIVE_Q2_DELTA_KVARH",
    "REVERSE_BULK_KWH",
    "REVERSE_DELTA_KWH",
    "Fence",
    "IntervalRecord",
    "RegisterRecord",
    "StoredInterval",
    "StoredRegister",
    "WriteResult",
]

# CIM ReadingType mRIDs the node uses most (FACTS §6, from Connexo's mapping to OBIS).
FORWARD_BULK_KWH = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"  # 1.0.1.8.0.255, A+ register
REVERSE_BULK_KWH = "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.3.72.0"  # 1.0.2.8.0.255, A- register
# A+ registers frozen daily (macro period 11), total then rates 1-4 (尖/峰/平/谷), as
# ``backfill.freeze_type`` names them.
FROZEN_FORWARD_KWH = tuple(f"11.0.0.1.1.1.12.0.0.0.0.{tou}.0.0.0.3.72.0" for tou in range(5))
FORWARD_DELTA_KWH = "0.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"  # 1.0.1.6.0.255, A+ interval
REVERSE_DELTA_KWH = "0.0.0.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"  # 1.0.2.6.0.255, A- interval
REACTIVE_Q1_DELTA_KVARH = "0.0.0.4.2.1.12.0.0.0.0.0.0.0.0.3.73.0"  # 1.0.3.6.0.255
REACTIVE_Q2_DELTA_KVARH = "0.0.0.4.3.1.12.0.0.0.0.0.0.0.0.3.73.0"  # 1.0.4.6.0.255


@dataclass(frozen=True, slots=True)
class Fence:
    """A line owner's fencing token: writes under it are refused once another instance
    has taken the gateway (:mod:`powerbus.nodes.metering.ownership`)."""

    gateway: str
    token: int


@dataclass(frozen=True, slots=True)
class IntervalRecord:
    """One checked interval value of one meter and reading type, to store."""

    meter_id: str
    reading_type: str
    value: IntervalValue

    @property
    def key(self) -> tuple[str, str, datetime]:
        """The identity of the interval: storing the same key again is idempotent."""
        return self.meter_id, self.reading_type, self.value.end


@dataclass(frozen=True, slots=True)
class StoredInterval:
    """An interval value as stored, with the write that stored it."""

    meter_id: str
    reading_type: str
    value: IntervalValue
    write_id: int


@dataclass(frozen=True, slots=True)
class RegisterRecord:
    """A cumulative register read (Wh, varh, or pulses on a pulse channel) to store."""

    meter_id: str
    reading_type: str
    read_at: datetime
    value: int
    quality: QualityCode = QualityCode.VALID
    rule: VeeRule = VeeRule.UNSPECIFIED
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StoredRegister:
    """A register read as stored."""

    record: RegisterRecord
    write_id: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write did with each value it was given.

    ``superseded``: replaced a stored estimate (the old one kept in history);
    ``unchanged``: the same value was stored already (a re-store is a no-op);
    ``kept``: an estimate that did not replace a measured value;
    ``conflicts``: a measured value that differs from a measured value stored already,
    left as it was for review.
    """

    write_id: int
    inserted: int = 0
    superseded: int = 0
    unchanged: int = 0
    kept: int = 0
    conflicts: int = 0
