"""The HTTP login settings of a bus (keys of ``[bus]``, see docs/security.md).

>>> AuthSettings().mode, AuthSettings().metrics
(<HttpAuthMode.AUTO: 'auto'>, <MetricsAuth.OPEN: 'open'>)
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import timedelta

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["AuthSettings", "HttpAuthMode", "MetricsAuth"]


class HttpAuthMode(str, enum.Enum):
    """When the dashboard and ``/api`` ask for a login (``http_auth``)."""

    AUTO = "auto"
    """Once any user exists. Before, only requests from this machine (loopback) are
    served, as an operator without a name: the development mode of ``make demo``."""
    REQUIRED = "required"
    """Always, even before any user exists (then nobody gets in until one is added)."""


class MetricsAuth(str, enum.Enum):
    """Whether ``/metrics`` and ``/healthz`` ask for a token (``metrics_auth``)."""

    OPEN = "open"
    """Served to anyone, as Prometheus and load balancers expect by default."""
    TOKEN = "token"
    """Only with ``Authorization: Bearer`` of any user's API token."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """How the bus's HTTP port authenticates requests."""

    mode: HttpAuthMode = HttpAuthMode.AUTO
    metrics: MetricsAuth = MetricsAuth.OPEN
    session_ttl: timedelta = timedelta(hours=12)
    """How long a login lasts; the cookie and the server-side session expire together."""
    login_rate: float = 0.2
    """Login attempts a second each peer host may make after ``login_burst``."""
    login_burst: int = 10
    """Login attempts each peer host may make at once."""
    cache_ttl: timedelta = timedelta(seconds=2)
    """How long a checked session or token is trusted before the database is asked
    again: a logout or a removed user on another bus instance takes effect within it."""

    def __post_init__(self) -> None:
        if self.session_ttl <= timedelta(0):
            raise ConfigError(f"http_session_ttl: must be above 0, got {self.session_ttl}")
        if self.login_rate <= 0 or self.login_burst < 1:
            raise ConfigError(
                f"login_rate ({self.login_rate}) and login_burst ({self.login_burst}) "
                "must be positive"
            )
