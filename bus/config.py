"""Settings of the bus process, resolved with :func:`powerbus.bus.kernel.config.resolve`.

>>> from powerbus.bus.kernel.config import resolve
>>> cfg = resolve(BusConfig, flags={"grpc": "127.0.0.1:0"}, env={"POWERBUS_LEASE_TTL": "5s"})
>>> (str(cfg.grpc), cfg.lease_ttl.total_seconds())
('127.0.0.1:0', 5.0)
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from powerbus.bus.http_auth.settings import AuthSettings, HttpAuthMode, MetricsAuth
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import ConfigError
from powerbus.bus.kernel.limits import DEFAULT_MAX_BYTES_IN_FLIGHT, DEFAULT_MAX_REQUEST_BYTES
from powerbus.bus.kernel.tracing import otlp_endpoint

__all__ = ["DEFAULT_DB_URL", "BusConfig"]

DEFAULT_DB_URL = "sqlite:///powerbus.db"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BusConfig:
    """Settings of one bus process (``powerbus bus``)."""

    section = "bus"

    grpc: HostPort = HostPort("127.0.0.1", 50051)
    """Router, registry, health and reflection."""
    http: HostPort = HostPort("127.0.0.1", 8080)
    """Dashboard, /metrics and /api."""
    db: str = DEFAULT_DB_URL
    """SQLAlchemy URL of the registry database."""
    state_file: Path | None = None
    lease_ttl: timedelta = timedelta(seconds=10)
    """Lease granted to nodes that ask for none; renewed by heartbeat."""
    sweep_interval: timedelta = timedelta(milliseconds=500)
    """How often lapsed leases are looked for (and other bus instances' changes picked up)."""
    drain_grace: timedelta = timedelta(seconds=5)
    """On SIGTERM, how long calls in flight may take to finish."""
    policy_file: Path | None = None
    """TOML file whose ``[policy]`` table sets load-balancing defaults (docs/load-balancing.md)."""
    zone: str = ""
    """This bus instance's zone: the router prefers nodes of the same zone."""
    access_log: bool = False
    """Log every routed call (logger ``powerbus.access``), as Envoy's access log does."""
    otlp_endpoint: str = ""
    """OpenTelemetry collector (OTLP/gRPC) to send spans of routed calls to, e.g.
    ``http://127.0.0.1:4317``; empty: ``OTEL_EXPORTER_OTLP_ENDPOINT``, else no tracing."""
    events_in: HostPort = HostPort("127.0.0.1", 0)
    """ZeroMQ XSUB socket publishers connect to (port 0: any free port, see the state file)."""
    events_out: HostPort = HostPort("127.0.0.1", 0)
    """ZeroMQ XPUB socket subscribers connect to."""
    event_retention: timedelta = timedelta(days=7)
    """How long the event store keeps envelopes for replay."""
    allowed_networks: str = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    """CIDRs, comma-separated, that registered node addresses must be in (docs/security.md)."""
    denied_networks: str = "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32"
    """CIDRs refused even when allowed: link-local and cloud metadata addresses."""
    register_rate: float = 50.0
    """Registrations a second each peer host may make, after ``register_burst`` at once."""
    register_burst: int = 200
    """Registrations each peer host may make at once before ``register_rate`` applies."""
    tls_cert: Path | None = None
    """PEM certificate of the gRPC port (with ``tls_key``); re-read when rotated."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_ca: Path | None = None
    """PEM CA bundle: clients must present a certificate it signed (mTLS)."""
    insecure: bool = False
    """Allow plaintext gRPC beyond loopback (warned about at every start)."""
    access_control: bool = False
    """Decide every call, registration, policy change and traffic report by the stored
    rules (``powerbus acl``), denying what no rule allows; identities come from
    certificates or bearer tokens (``powerbus tokens``)."""

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest request body accepted (RESOURCE_EXHAUSTED beyond); the same key bounds nodes."""
    max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT
    """Request bytes the router may hold at once while forwarding; past it, new requests
    are refused RESOURCE_EXHAUSTED (the memory a burst of large requests can cost)."""
    http_head_timeout: timedelta = timedelta(seconds=10)
    """Time an HTTP client has to send a request's line and headers (408 and closed after)."""
    http_body_timeout: timedelta = timedelta(seconds=30)
    """Time an HTTP client has, after the headers, to send the request's body."""
    http_max_connections: int = 1000
    """HTTP connections served at once; beyond, requests are answered 503."""
    http_auth: HttpAuthMode = HttpAuthMode.AUTO
    """When the dashboard and /api ask for a login: ``auto`` once any user exists (before,
    loopback callers only), ``required`` always (docs/security.md)."""
    metrics_auth: MetricsAuth = MetricsAuth.OPEN
    """``open``: /metrics and /healthz for anyone; ``token``: an API token is needed."""
    http_session_ttl: timedelta = timedelta(hours=12)
    """How long a dashboard login lasts."""
    login_rate: float = 0.2
    """Login attempts a second each peer host may make after ``login_burst``."""
    login_burst: int = 10
    """Login attempts each peer host may make at once."""
    http_trusted_proxies: str = ""
    """IP addresses, comma-separated, of reverse proxies whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` the HTTP port believes; empty: nobody's."""

    @property
    def http_auth_settings(self) -> AuthSettings:
        """The login settings of the HTTP port, as ``bus/http_auth`` takes them."""
        return AuthSettings(
            mode=self.http_auth,
            metrics=self.metrics_auth,
            session_ttl=self.http_session_ttl,
            login_rate=self.login_rate,
            login_burst=self.login_burst,
        )

    def __post_init__(self) -> None:
        if self.otlp_endpoint:  # refused here, so `powerbus config check` names it too
            otlp_endpoint(self.otlp_endpoint, env={})
        for key in ("http_head_timeout", "http_body_timeout"):
            if getattr(self, key) <= timedelta(0):
                raise ConfigError(f"{key}: must be above 0, got {getattr(self, key)}")
        if self.max_bytes_in_flight < self.max_request_bytes:
            raise ConfigError(
                f"max_bytes_in_flight ({self.max_bytes_in_flight}) must be at least "
                f"max_request_bytes ({self.max_request_bytes})"
            )
        self.http_auth_settings  # noqa: B018 -- checks the login keys now, naming them
        if self.http_max_connections < 1:
            raise ConfigError(
                f"http_max_connections: must be at least 1, got {self.http_max_connections}"
            )
