"""Settings of one node process, resolved once at the edge (flags > ``POWERBUS_*`` > TOML).

>>> from powerbus.bus.kernel.config import resolve
>>> cfg = resolve(NodeConfig, flags={"bus": "127.0.0.1:50051", "id": "echo-1"}, env={})
>>> (str(cfg.listen), cfg.weight, cfg.priority.value)
('127.0.0.1:0', 100, 'primary')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import TypeVar

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.config import resolve
from powerbus.bus.kernel.errors import ConfigError
from powerbus.bus.kernel.limits import DEFAULT_MAX_REQUEST_BYTES
from powerbus.bus.kernel.tracing import otlp_endpoint
from powerbus.registry.v1 import registry_pb2

__all__ = ["NodeConfig", "NodePriority", "kind_settings"]

T = TypeVar("T")


class NodePriority(str, Enum):
    """Hot standby: ``standby`` nodes take traffic only when too few ``primary`` ones are up."""

    PRIMARY = "primary"
    STANDBY = "standby"

    def to_proto(self) -> registry_pb2.Priority.ValueType:
        """The wire value in ``RegisterRequest.priority``."""
        if self is NodePriority.STANDBY:
            return registry_pb2.PRIORITY_STANDBY
        return registry_pb2.PRIORITY_PRIMARY


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeConfig:
    """Settings of one node (``powerbus node KIND``); ``[node]`` in a TOML file.

    >>> NodeConfig(id="echo-1", bus=HostPort("127.0.0.1", 50051)).advertised(40123)
    HostPort(host='127.0.0.1', port=40123)
    """

    section = "node"

    id: str = ""
    """Unique, stable node id, e.g. ``billing-1``. Required."""
    bus: HostPort | None = None
    """The bus's gRPC address. ``None`` serves standalone, without registering."""
    listen: HostPort = HostPort("127.0.0.1", 0)
    """Where the node serves gRPC; port 0 picks a free port."""
    advertise: HostPort | None = None
    """Address registered with the bus when callers must use another than ``listen``."""
    state_file: Path | None = None
    """Written with ``{"grpc": ..., "node_id": ...}`` once registered."""
    weight: int = 100
    zone: str = ""
    priority: NodePriority = NodePriority.PRIMARY
    lease_ttl: timedelta = timedelta(0)
    """Lease asked of the bus; zero takes the bus default."""
    drain_grace: timedelta = timedelta(seconds=5)
    """On SIGTERM, how long calls in flight may take to finish."""
    deregister_delay: timedelta = timedelta(milliseconds=500)
    """On SIGTERM, how long to keep serving new calls after deregistering, so every bus
    instance sees the node leave before it stops listening (about one registry poll)."""
    call_timeout: timedelta = timedelta(seconds=10)
    """Deadline of calls through the bus that set none, and of calls to the registry."""
    otlp_endpoint: str = ""
    """OpenTelemetry collector (OTLP/gRPC) to send this node's spans to, e.g.
    ``http://127.0.0.1:4317``; empty: ``OTEL_EXPORTER_OTLP_ENDPOINT``, else no tracing."""
    tls_cert: Path | None = None
    """PEM certificate served on the node's port and link, and presented to the bus."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_ca: Path | None = None
    """PEM CA bundle: callers must present a certificate it signed (mTLS); the bus's
    certificate is checked against it."""
    insecure: bool = False
    """Allow plaintext beyond loopback (warned about at every start)."""
    token_file: Path | None = None
    """File holding this node's bearer token (``powerbus tokens create node/<id>``): how the
    node proves its identity to a bus without TLS, or beside it."""
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest request body served, on gRPC and the node link (the bus's key of that name)."""

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ConfigError("id: required (--id, POWERBUS_ID or [node] id)")
        if not 0 <= self.weight <= 2**32 - 1:
            raise ConfigError(f"weight: must be 0..4294967295, got {self.weight}")
        for name in ("lease_ttl", "drain_grace", "call_timeout", "deregister_delay"):
            if getattr(self, name) < timedelta(0):
                raise ConfigError(f"{name}: must not be negative")
        if self.call_timeout == timedelta(0):
            raise ConfigError("call_timeout: must be positive")
        if self.otlp_endpoint:
            otlp_endpoint(self.otlp_endpoint, env={})

    def advertised(self, port: int) -> HostPort:
        """The address to register, given the port the server actually bound."""
        return self.advertise or HostPort(self.listen.host, port)


def kind_settings(
    settings_type: type[T], *, options: Mapping[str, str], config_file: Path | None
) -> T:
    """A kind's own settings (a frozen dataclass with a ``section``) from its options >
    ``POWERBUS_*`` > the TOML table; an option the kind does not know is an error."""
    known = {f.name for f in dataclasses.fields(settings_type)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        takes = ", ".join(f"--{n.replace('_', '-')}" for n in sorted(known))
        given = ", ".join(f"--{n.replace('_', '-')}" for n in unknown)
        raise ConfigError(f"unknown option(s) {given}; this kind takes {takes}")
    return resolve(settings_type, flags=dict(options), config_file=config_file)


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (one line); :class:`ConfigError` naming the file if it
    cannot be read or is empty."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"token_file: cannot read {path}: {error.strerror}") from None
    if not token or "\n" in token:
        raise ConfigError(f"token_file: {path} must hold one token on one line")
    return token
