"""VEE thresholds: a typed, frozen object, loadable from the ``[vee]`` table of a TOML file.

The sources in the domain notes give the shape of each check but few numbers (the
California thresholds were not retrievable), so every default here is a starting point an
operator tunes, not a standard's value. Percentages are whole numbers (45, not 0.45), as
in the MDM products the rules come from.

>>> cfg = VeeConfig.from_dict({"spike_percent": 300, "time_tolerance": "2m"})
>>> cfg.spike_percent, cfg.time_tolerance.total_seconds(), cfg.frozen_intervals
(300, 120.0, 3)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from powerbus.bus.kernel.config import parse_duration, read_toml
from powerbus.bus.kernel.errors import ConfigError
from powerbus.nodes.metering.errors import InvalidVeeConfig

__all__ = ["VeeConfig"]


@dataclass(frozen=True, kw_only=True, slots=True)
class VeeConfig:
    """Thresholds of every VEE rule; see ``docs/metering-node.md`` for what each does."""

    time_tolerance: timedelta = timedelta(minutes=5)
    """TIME_TOLERANCE: largest meter clock offset accepted."""
    spike_percent: int = 200
    """SPIKE: highest interval of a day over the third-highest by more than this."""
    spike_min_wh: int = 100
    """SPIKE: a highest interval below this is never a spike (noise on a tiny load)."""
    frozen_intervals: int = 3
    """FROZEN: this many equal non-zero intervals in a row."""
    zero_run_intervals: int = 8
    """ZERO_CONSUMPTION: a run of at least this many zero intervals..."""
    zero_min_expected_wh: int = 200
    """...where the history expected at least this much energy over the run."""
    high_percent: int = 100
    """HIGH_LOW: a day's usage above ADU × (1 + high_percent/100)..."""
    low_percent: int = 80
    """...or below ADU × (1 − low_percent/100)."""
    history_min_days: int = 7
    """HIGH_LOW and historical estimation need at least this many days of history."""
    sum_tolerance_wh: int = 10
    """SUM_CHECK: absolute tolerance; 10 Wh is one step of a 0.01 kWh register."""
    sum_tolerance_percent: Decimal = Decimal("0.5")
    """SUM_CHECK: relative tolerance on the register delta; the larger of the two holds."""
    max_interpolation_intervals: int = 8
    """Gaps up to this many intervals are interpolated; longer ones use history."""
    max_pulse_hz: int = 16
    """DATA_OVERFLOW: an S0 output (≥30 ms on, as long off) cannot pulse faster."""
    rollover_window_percent: int = 10
    """ROLLOVER without a max demand: the register must go from its top this-percent to
    its bottom this-percent, as a wrap does."""
    time_zone: str = "Asia/Shanghai"
    """Local days (spike, high/low) and history slots are taken in this zone."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                raise InvalidVeeConfig(f"vee.{field.name}: must not be negative, got {value}")
        if self.frozen_intervals < 2:
            raise InvalidVeeConfig("vee.frozen_intervals: needs at least 2 intervals")
        if not 0 < self.rollover_window_percent < 50:
            raise InvalidVeeConfig("vee.rollover_window_percent: must be within 1-49")
        if self.low_percent > 100:
            raise InvalidVeeConfig("vee.low_percent: at most 100")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidVeeConfig(f"vee.time_zone: unknown zone {self.time_zone!r}") from None

    @property
    def zone(self) -> ZoneInfo:
        """The local time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.time_zone)

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], *, source: str = "vee") -> VeeConfig:
        """Build from a TOML-like table; unknown keys and wrong types name the key."""
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - set(hints))
        if unknown:
            raise InvalidVeeConfig(f"{source}: unknown key(s): {', '.join(unknown)}")
        values: dict[str, Any] = {
            k: _convert(f"{source}.{k}", hints[k], raw) for k, raw in table.items()
        }
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], *, section: str = "vee") -> VeeConfig:
        """Read the ``[section]`` table of a TOML file (all keys optional)."""
        table = read_toml(path, what="VEE config file").get(section, {})
        if not isinstance(table, dict):
            raise InvalidVeeConfig(f"{path}: [{section}] must be a table")
        return cls.from_dict(table, source=f"{path} [{section}]")


def _convert(key: str, hint: object, raw: object) -> object:
    # Field types are strings under ``from __future__ import annotations``.
    if hint == "timedelta":
        try:
            return parse_duration(raw, field=key)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise InvalidVeeConfig(exc.message) from None
    if hint == "Decimal":
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise InvalidVeeConfig(f"{key}: expected a number, got {raw!r}")
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            raise InvalidVeeConfig(f"{key}: not a number: {raw!r}") from None
    if hint == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise InvalidVeeConfig(f"{key}: expected a whole number, got {raw!r}")
        return raw
    if not isinstance(raw, str):
        raise InvalidVeeConfig(f"{key}: expected text, got {raw!r}")
    return raw
