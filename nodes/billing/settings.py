"""Settings of the billing node beyond those of every node: the ``[billing]`` table.

>>> from powerbus.bus.kernel.config import resolve
>>> s = resolve(BillingSettings, flags={"db": "sqlite://"}, env={})
>>> s.due_days, s.batch_size
(15, 500)
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["BillingSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BillingSettings:
    """``powerbus node billing ... [--db URL] [--due-days N] [--batch-size N]
    [--events-in HOST:PORT] ...``."""

    section = "billing"

    db: str = "sqlite:///powerbus-billing.db"
    """SQLAlchemy URL of the billing store (bills, runs, payments, stored tariffs)."""
    due_days: int = 15
    """Days after a run's period end that its bills fall due, when the run names no date."""
    batch_size: int = 500
    """Accounts priced and written per transaction in a billing run."""
    call_timeout: timedelta = timedelta(seconds=10)
    """Deadline of each call to CRM or metering."""
    concurrency: int = 16
    """CRM look-ups in flight at once during a run."""
    run_lease: timedelta = timedelta(seconds=15)
    """How long a node holds a run without renewing before another node may take it over
    (after a crash)."""
    time_zone: str = "Asia/Shanghai"
    """Local time of billing periods and TOU windows."""
    events_in: str = ""
    """The bus's ``events_in`` socket(s), ``host:port[,host:port]``: when set, bill and run
    events are staged in an outbox in the billing store and published there."""

    def __post_init__(self) -> None:
        for name in ("due_days", "batch_size", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("call_timeout", "run_lease"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"{name}: must be positive")
