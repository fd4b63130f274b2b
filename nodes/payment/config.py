"""Settings of the payment node beyond those of every node: ``[payment]`` in the TOML file.

>>> from powerbus.bus.kernel.config import resolve
>>> s = resolve(PaymentSettings, flags={"db": "sqlite://"}, env={})
>>> (s.db, s.billing_timeout.total_seconds(), s.batch_size)
('sqlite://', 2.0, 256)
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["PaymentSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PaymentSettings:
    """``powerbus node payment ... [--db URL] [--apply-interval 1s] [--batch-size 256]
    [--events-in HOST:PORT]``."""

    section = "payment"

    db: str = "sqlite:///payment.db"
    """The node's database (SQLAlchemy URL); its tables have their own migrations."""
    billing_timeout: timedelta = timedelta(seconds=2)
    """Deadline of each call to billing (ApplyPayment, UnapplyPayment, GetArrears)."""
    bank_timeout: timedelta = timedelta(seconds=30)
    """Deadline of BankGateway.FetchStatement during a reconciliation."""
    apply_interval: timedelta = timedelta(seconds=1)
    """How often pending applications are retried while billing is down."""
    batch_size: int = 256
    """At most this many concurrent posts share one database transaction."""
    window_before: timedelta = timedelta(hours=1)
    """Reconciliation reads payments paid this long before the settlement date..."""
    window_after: timedelta = timedelta(hours=1)
    """...and this long after it (T vs T+1 around midnight)."""
    events_in: str = ""
    """The bus's ``events_in`` socket(s), ``host:port[,host:port]``: when set, posted and
    reversed payments are staged in an outbox in the node's database and published."""

    def __post_init__(self) -> None:
        for name in ("billing_timeout", "bank_timeout", "apply_interval"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"{name}: must be positive")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be at least 1, got {self.batch_size}")
