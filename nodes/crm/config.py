"""Settings of the CRM node beyond those of every node: ``[crm]`` in the TOML file.

>>> from powerbus.bus.kernel.config import resolve
>>> s = resolve(CrmSettings, flags={"seed": "20"}, env={})
>>> (s.seed, s.section_timeout.total_seconds(), s.db)
(20, 2.0, 'sqlite:///crm.db')
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["CrmSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CrmSettings:
    """``powerbus node crm ... [--db URL] [--seed N] [--meters FILE] [--calendar FILE]``."""

    section = "crm"

    db: str = "sqlite:///crm.db"
    """The node's database (SQLAlchemy URL); its tables have their own migrations."""
    seed: int = 0
    """Load this many generated customers at start (0: none); loading again changes nothing."""
    seed_rng: int = 1
    """The random seed the generated customers come from: the same seed, the same people."""
    meters: Path | None = None
    """A meter farm's meters file (CSV): generated accounts are bound to its meter ids."""
    calendar: Path | None = None
    """Holidays file for working-day deadlines; default the shipped one."""
    section_timeout: timedelta = timedelta(seconds=2)
    """Deadline of each section of the customer view (billing, payment, metering)."""
    sla_check_interval: timedelta = timedelta(seconds=30)
    """How often overdue SLA deadlines are looked for."""
    slot_capacity: int = 4
    """Crews per appointment slot."""
    events_out: str = ""
    """The bus's ``events_out`` socket(s), ``host:port[,host:port]``: when set, CRM
    subscribes to ``metering.end_device_event.reported`` and opens fault-repair tickets."""

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed: must not be negative, got {self.seed}")
        if self.section_timeout <= timedelta(0):
            raise ConfigError("section_timeout: must be positive")
        if self.sla_check_interval <= timedelta(0):
            raise ConfigError("sla_check_interval: must be positive")
        if self.slot_capacity < 1:
            raise ConfigError(f"slot_capacity: must be at least 1, got {self.slot_capacity}")
