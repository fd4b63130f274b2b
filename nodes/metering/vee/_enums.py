"""Values that cross the wire: each member is named as the suffix of the matching
``powerbus.metering.v1`` enum value, and its value is that suffix lower-cased
(``QUALITY_CODE_SUSPECT`` ↔ ``QualityCode.SUSPECT == "suspect"``), so
:mod:`powerbus.nodes.metering.convert` maps them by name, with no table to drift.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["EstimationMethod", "QualityCode", "VeeAction", "VeeRule"]


class QualityCode(str, Enum):
    """Quality of a stored value (the E/S flags of meter-data practice)."""

    VALID = "valid"
    SUSPECT = "suspect"
    ESTIMATED = "estimated"
    SUBSTITUTED = "substituted"

    @property
    def edited(self) -> bool:
        """True for values VEE computed (E or S) rather than read."""
        return self in (QualityCode.ESTIMATED, QualityCode.SUBSTITUTED)


class VeeRule(str, Enum):
    """The VEE checks and edits, as ``VeeRule`` of the proto."""

    UNSPECIFIED = "unspecified"
    GAP = "gap"
    DUPLICATE = "duplicate"
    INTERVAL_SIZE = "interval_size"
    PLAUSIBILITY = "plausibility"
    NEGATIVE_CONSUMPTION = "negative_consumption"
    ROLLOVER = "rollover"
    METER_RESET = "meter_reset"
    FROZEN = "frozen"
    ZERO_CONSUMPTION = "zero_consumption"
    SPIKE = "spike"
    HIGH_LOW = "high_low"
    SUM_CHECK = "sum_check"
    TIME_TOLERANCE = "time_tolerance"
    DATA_OVERFLOW = "data_overflow"
    UNIT = "unit"


class EstimationMethod(str, Enum):
    """How an estimated or substituted value was computed."""

    UNSPECIFIED = "unspecified"
    LINEAR_INTERPOLATION = "linear_interpolation"
    FLAT_LOAD = "flat_load"
    HISTORICAL_AVERAGE = "historical_average"
    PROFILE = "profile"
    ROLLOVER_CORRECTION = "rollover_correction"
    MANUAL = "manual"


class VeeAction(str, Enum):
    """What VEE did with a value."""

    FLAGGED = "flagged"
    ESTIMATED = "estimated"
    SUBSTITUTED = "substituted"
    REJECTED = "rejected"
