"""Settings of the metering node beyond those of every node: the ``[metering]`` table.

>>> from powerbus.bus.kernel.config import resolve
>>> s = resolve(MeteringSettings, flags={"interval": "2s"}, env={})
>>> s.interval.total_seconds(), s.line_lease.total_seconds()
(2.0, 15.0)
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["MeteringSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeteringSettings:
    """``powerbus node metering ... --meters FILE [--interval 15m] [--db URL] ...``."""

    section = "metering"

    meters: Path | None = None
    """Meters file (CSV: meter_id,protocol,gateway,address,model,pulse_constant), loaded
    into the node's meter table at start; meters can also be managed with PutMeter."""
    interval: timedelta = timedelta(minutes=15)
    """Interval of the reads: intervals end on its multiples; must divide a day."""
    db: str = "sqlite:///powerbus-metering.db"
    """SQLAlchemy URL of the readings store; instances that share lines share it."""
    line_lease: timedelta = timedelta(seconds=15)
    """How long a line stays with an instance that stopped renewing: a dead instance's
    lines are taken over by the others within this."""
    events_in: str = ""
    """The bus's events_in address (HOST:PORT, from its state file) to publish to;
    empty: events are kept in the outbox until a start with it set."""
    time_zone: str = "Asia/Shanghai"
    """Local time of the meters' clocks, the daily freeze and VEE's days."""
    request_timeout: timedelta = timedelta(seconds=1)
    """Deadline of one exchange with a meter once the line is ours."""
    read_timeout: timedelta = timedelta(seconds=10)
    """Deadline of an on-demand read or a control, per device."""
    freeze_readback_days: int = 62
    """On first contact with a DL/T 645 meter, read back its month-start daily freezes
    within this many days (the meters keep 62), so last month bills from the registers
    frozen at its boundaries; 0 reads none."""

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or timedelta(days=1) % self.interval:
            raise ConfigError(f"interval: must divide a day (15m, 5m, 2s), got {self.interval}")
        if self.interval < timedelta(seconds=1):
            raise ConfigError(f"interval: at least 1s, got {self.interval}")
        if not 0 <= self.freeze_readback_days <= 62:
            raise ConfigError(
                f"freeze_readback_days: 0-62 (the meters keep 62), got {self.freeze_readback_days}"
            )
        for name in ("line_lease", "request_timeout", "read_timeout"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"{name}: must be positive")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"time_zone: unknown zone {self.time_zone!r}") from None
