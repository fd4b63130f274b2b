"""Values that cross the wire or the CLI.

Each value is the suffix of the matching ``powerbus.billing.v1`` enum name, lower-cased
(``TOU_PERIOD_SHARP_PEAK`` ↔ ``"sharp_peak"``), so a servicer maps them with
``TouPeriod(name.removeprefix("TOU_PERIOD_").lower())`` and no table.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CustomerClass", "DemandBasis", "LineKind", "TierBasis", "TouPeriod", "VoltageLevel"]


class TouPeriod(str, Enum):
    """A time-of-use period (分时时段), in the order bills list them."""

    SHARP_PEAK = "sharp_peak"
    PEAK = "peak"
    FLAT = "flat"
    VALLEY = "valley"
    DEEP_VALLEY = "deep_valley"

    @property
    def chinese(self) -> str:
        """The period's name on a Chinese bill, e.g. ``"尖峰"``."""
        return _TOU_CHINESE[self]

    @property
    def english(self) -> str:
        """The period's name on an English bill, e.g. ``"sharp peak"``."""
        return self.value.replace("_", " ")


_TOU_CHINESE = {
    TouPeriod.SHARP_PEAK: "尖峰",
    TouPeriod.PEAK: "高峰",
    TouPeriod.FLAT: "平段",
    TouPeriod.VALLEY: "低谷",
    TouPeriod.DEEP_VALLEY: "深谷",
}


class CustomerClass(str, Enum):
    """Customer class of the catalogue (用电类别)."""

    RESIDENTIAL = "residential"
    INDUSTRY_COMMERCE = "industry_commerce"
    LARGE_INDUSTRY = "large_industry"
    AGRICULTURE = "agriculture"


class VoltageLevel(str, Enum):
    """Supply voltage band a tariff is priced for."""

    BELOW_1KV = "below_1kv"
    KV_1_TO_10 = "1_to_10kv"
    KV_35 = "35kv"
    KV_110 = "110kv"
    KV_220_AND_ABOVE = "220kv_and_above"


class TierBasis(str, Enum):
    """What tier thresholds count: kWh of the month, or of the calendar year so far."""

    MONTHLY = "monthly"
    ANNUAL = "annual"


class DemandBasis(str, Enum):
    """What the 基本电费 of a two-part tariff is charged on; the customer chooses."""

    MAX_DEMAND = "max_demand"
    CAPACITY = "capacity"


class LineKind(str, Enum):
    """What a bill line charges for."""

    ENERGY = "energy"
    TIER_SURCHARGE = "tier_surcharge"
    DEMAND_CHARGE = "demand_charge"
    CAPACITY_CHARGE = "capacity_charge"
    EXCESS_DEMAND = "excess_demand"
    POWER_FACTOR_ADJUSTMENT = "power_factor_adjustment"
    GOVERNMENT_FUND = "government_fund"
    LATE_FEE = "late_fee"
    ADJUSTMENT = "adjustment"
