"""Registered nodes as everyone sees them: what a node registered, how the directory of
nodes changes, and the read-only view of it that monitoring watches.

Every record is a frozen dataclass, so the router can hold one across an ``await``
without it changing underneath; a change to a node replaces its record.

>>> node = NodeRecord(node_id="echo-1", kind="echo", address="127.0.0.1:7001",
...                   services=("powerbus.echo.v1.Echo",), registered_at=EPOCH,
...                   last_heartbeat_at=EPOCH, lease_expires_at=EPOCH, lease_id="l1")
>>> (node.weight, node.priority.value, node.health.value, node.live)
(100, 'primary', 'up', True)
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Protocol

from google.protobuf import timestamp_pb2

from powerbus.registry.v1 import registry_pb2

__all__ = [
    "EPOCH",
    "ChangeKind",
    "Dependency",
    "DirectoryChange",
    "DirectoryView",
    "Load",
    "NodeHealth",
    "NodeRecord",
    "Priority",
    "ServiceEntry",
]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_WEIGHT = 100


class Priority(str, Enum):
    """Hot standby: STANDBY nodes take traffic only when too few PRIMARY ones are healthy."""

    PRIMARY = "primary"
    STANDBY = "standby"

    def to_proto(self) -> registry_pb2.Priority.ValueType:
        return _PRIORITY_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> Priority:
        """UNSPECIFIED reads as PRIMARY; raises ``ValueError`` for unknown numbers."""
        try:
            return _PRIORITY_FROM_PROTO[value]
        except KeyError:
            raise ValueError(f"unknown priority {value}") from None


class NodeHealth(str, Enum):
    UP = "up"
    """Lease current, serving."""
    DRAINING = "draining"
    """Finishing in-flight calls, taking no new ones."""
    DOWN = "down"
    """Lease lapsed or deregistered."""

    def to_proto(self) -> registry_pb2.NodeHealth.ValueType:
        return _HEALTH_TO_PROTO[self]


class ChangeKind(str, Enum):
    ADDED = "added"
    UPDATED = "updated"
    REMOVED = "removed"


_PRIORITY_TO_PROTO: dict[Priority, registry_pb2.Priority.ValueType] = {
    Priority.PRIMARY: registry_pb2.PRIORITY_PRIMARY,
    Priority.STANDBY: registry_pb2.PRIORITY_STANDBY,
}
_PRIORITY_FROM_PROTO: dict[int, Priority] = {
    registry_pb2.PRIORITY_UNSPECIFIED: Priority.PRIMARY,
    registry_pb2.PRIORITY_PRIMARY: Priority.PRIMARY,
    registry_pb2.PRIORITY_STANDBY: Priority.STANDBY,
}
_HEALTH_TO_PROTO: dict[NodeHealth, registry_pb2.NodeHealth.ValueType] = {
    NodeHealth.UP: registry_pb2.NODE_HEALTH_UP,
    NodeHealth.DRAINING: registry_pb2.NODE_HEALTH_DRAINING,
    NodeHealth.DOWN: registry_pb2.NODE_HEALTH_DOWN,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """A service a node calls; ``required=False`` for soft dependencies."""

    service: str
    required: bool = True

    def to_proto(self) -> registry_pb2.Dependency:
        return registry_pb2.Dependency(service=self.service, required=self.required)


@dataclass(frozen=True, slots=True, kw_only=True)
class Load:
    """Load a node reports with each heartbeat."""

    in_flight: int = 0
    cpu: float = 0.0
    requests_total: int = 0
    errors_total: int = 0

    def to_proto(self) -> registry_pb2.Load:
        return registry_pb2.Load(**dataclasses.asdict(self))

    @classmethod
    def from_proto(cls, load: registry_pb2.Load) -> Load:
        return cls(
            in_flight=load.in_flight,
            cpu=load.cpu,
            requests_total=load.requests_total,
            errors_total=load.errors_total,
        )


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    """One node as the registry knows it. Times are timezone-aware UTC."""

    node_id: str
    kind: str
    address: str
    services: tuple[str, ...]
    weight: int = DEFAULT_WEIGHT
    zone: str = ""
    priority: Priority = Priority.PRIMARY
    health: NodeHealth = NodeHealth.UP
    dependencies: tuple[Dependency, ...] = ()
    # Unhashable, so left out of __hash__; the constructor freezes a copy.
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    load: Load = Load()
    registered_at: datetime
    last_heartbeat_at: datetime
    lease_expires_at: datetime
    lease_id: str
    down_since: datetime | None = None
    """When it went down; None while live."""

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, types.MappingProxyType):
            object.__setattr__(self, "metadata", types.MappingProxyType(dict(self.metadata)))

    @property
    def left(self) -> bool:
        """Down because it deregistered (a clean stop), not because its lease lapsed."""
        return (
            self.health is NodeHealth.DOWN
            and self.down_since is not None
            and self.down_since < self.lease_expires_at
        )

    @property
    def live(self) -> bool:
        """Up or draining: the node still holds its id."""
        return self.health is not NodeHealth.DOWN

    def to_proto(self) -> registry_pb2.Node:
        return registry_pb2.Node(
            node_id=self.node_id,
            kind=self.kind,
            address=self.address,
            services=self.services,
            weight=self.weight,
            zone=self.zone,
            priority=self.priority.to_proto(),
            dependencies=[d.to_proto() for d in self.dependencies],
            metadata=dict(self.metadata),
            health=self.health.to_proto(),
            load=self.load.to_proto(),
            registered_at=_timestamp(self.registered_at),
            last_heartbeat_at=_timestamp(self.last_heartbeat_at),
            lease_expires_at=_timestamp(self.lease_expires_at),
            lease_id=self.lease_id,
            down_since=_timestamp(self.down_since) if self.down_since else None,
        )


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """Every node in the directory that serves one service, sorted by node id.

    ``nodes`` includes nodes that are down (kept for the registry's ``down_retention``),
    so a service whose nodes all went down is still known: callers get UNAVAILABLE, not
    UNIMPLEMENTED. ``healthy`` is what takes new calls.
    """

    name: str
    nodes: tuple[NodeRecord, ...]
    _healthy: tuple[NodeRecord, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        healthy = tuple(n for n in self.nodes if n.health is NodeHealth.UP)
        object.__setattr__(self, "_healthy", healthy)

    @property
    def healthy(self) -> tuple[NodeRecord, ...]:
        """The nodes whose health is UP (computed once, so cheap on the hot path)."""
        return self._healthy


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """One change to the directory, as its listeners see it.

    ADDED: a node id entered the directory. UPDATED: anything about it changed, including
    its health going DOWN. REMOVED: a down node was purged after ``down_retention``;
    ``node`` is its last record. ``previous`` is the record it replaced (None for ADDED),
    so a listener can tell which services a re-registration left.
    """

    kind: ChangeKind
    node: NodeRecord
    revision: int
    previous: NodeRecord | None = None


class DirectoryView(Protocol):
    """What the bus's directory of registered nodes offers to those who watch it
    (monitoring), without their depending on the registry that keeps it."""

    def nodes(self, *, service: str | None = None, include_down: bool = False) -> list[NodeRecord]:
        """Nodes sorted by id, optionally only those serving ``service``."""
        ...

    def service(self, name: str) -> ServiceEntry | None:
        """The nodes serving ``name``; None if no node lists it."""
        ...

    def services(self) -> list[str]:
        """Every service some node lists, sorted."""
        ...

    def add_listener(self, callback: Callable[[DirectoryChange], None]) -> Callable[[], None]:
        """Call ``callback`` with each change; returns an unsubscribe."""
        ...
