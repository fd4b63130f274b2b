"""Turning registry requests into checked values; every error names the request field.

A node with no services is allowed: a pure client registers so that its dependencies
show up in the topology. It still gives the address it can be reached at (its health
endpoint), which is also what lets one live process hold the node id.

>>> request = registry_pb2.RegisterRequest(node_id="c-1", kind="client", address="127.0.0.1:1")
>>> check_registration(request, default_ttl=timedelta(seconds=10)).lease_ttl
datetime.timedelta(seconds=10)
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf import descriptor_pb2

from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.bus.kernel.nodes import DEFAULT_WEIGHT, Dependency, Load, Priority
from powerbus.bus.registry._descriptors import check_descriptor_set
from powerbus.registry.v1 import registry_pb2

__all__ = [
    "MAX_LEASE_TTL",
    "MIN_LEASE_TTL",
    "Registration",
    "check_heartbeat",
    "check_lease",
    "check_registration",
    "check_service_name",
    "check_service_names",
]

MIN_LEASE_TTL = timedelta(seconds=1)
MAX_LEASE_TTL = timedelta(minutes=5)
MAX_WEIGHT = 10_000
MAX_ID = 128
MAX_SHORT = 64
MAX_METADATA = 64
MAX_METADATA_VALUE = 1024
MIN_SECRET = 16
MAX_SECRET = 64

_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_SHORT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_FULL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A checked RegisterRequest."""

    node_id: str
    kind: str
    address: str
    services: tuple[str, ...]
    weight: int
    zone: str
    priority: Priority
    dependencies: tuple[Dependency, ...]
    metadata: Mapping[str, str]
    descriptor_set: bytes
    files: tuple[descriptor_pb2.FileDescriptorProto, ...]
    lease_ttl: timedelta
    instance_secret: bytes = b""
    """Proves a restarted node is the instance at its address (see ``_takeover``)."""
    lease_id: str = ""
    """The current lease, when its holder registers again."""


def check_registration(
    request: registry_pb2.RegisterRequest, *, default_ttl: timedelta
) -> Registration:
    """Raises :class:`InvalidArgument` naming the first wrong field."""
    node_id = _check_node_id(request.node_id)
    kind = _check_short("kind", request.kind, required=False)
    address = _check_address(request.address)
    services = check_service_names("services", request.services)
    weight = request.weight or DEFAULT_WEIGHT
    if weight > MAX_WEIGHT:
        raise InvalidArgument("weight", f"{weight} is above the maximum {MAX_WEIGHT}")
    zone = _check_short("zone", request.zone, required=False)
    try:
        priority = Priority.from_proto(request.priority)
    except ValueError as exc:
        raise InvalidArgument("priority", str(exc)) from None
    dependencies = _check_dependencies(request.dependencies)
    metadata = _check_metadata(request.metadata)
    files = check_descriptor_set(request.file_descriptor_set, services=services)
    secret = request.instance_secret
    if secret and not MIN_SECRET <= len(secret) <= MAX_SECRET:
        raise InvalidArgument(
            "instance_secret", f"{len(secret)} bytes; give {MIN_SECRET} to {MAX_SECRET} or none"
        )
    if len(request.lease_id) > MAX_SHORT:
        raise InvalidArgument("lease_id", f"longer than {MAX_SHORT} characters")
    return Registration(
        node_id=node_id,
        kind=kind,
        address=address,
        services=services,
        weight=weight,
        zone=zone,
        priority=priority,
        dependencies=dependencies,
        metadata=metadata,
        descriptor_set=request.file_descriptor_set,
        files=files,
        lease_ttl=_grant_ttl(request, default_ttl),
        instance_secret=secret,
        lease_id=request.lease_id,
    )


def check_lease(node_id: str, lease_id: str) -> None:
    """Both ids of a Heartbeat or Deregister request are present."""
    _check_node_id(node_id)
    if not lease_id:
        raise InvalidArgument("lease_id", "is empty")


def check_heartbeat(request: registry_pb2.HeartbeatRequest) -> Load:
    check_lease(request.node_id, request.lease_id)
    load = request.load
    if load.in_flight < 0:
        raise InvalidArgument("load.in_flight", f"is negative ({load.in_flight})")
    if not math.isfinite(load.cpu) or load.cpu < 0:
        raise InvalidArgument("load.cpu", f"is not a non-negative number ({load.cpu})")
    return Load.from_proto(load)


def check_service_names(field: str, names: Iterable[str]) -> tuple[str, ...]:
    """Full service names such as ``powerbus.echo.v1.Echo``, no duplicates."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        check_service_name(f"{field}[{index}]", name)
        if name in seen:
            raise InvalidArgument(f"{field}[{index}]", f"{name!r} is listed twice")
        seen.add(name)
    return tuple(names)


def check_service_name(field: str, name: str) -> str:
    if not _FULL_NAME.fullmatch(name):
        raise InvalidArgument(field, f"not a full service name: {name!r}")
    return name


def _check_node_id(node_id: str) -> str:
    if not node_id:
        raise InvalidArgument("node_id", "is empty")
    if len(node_id) > MAX_ID or not _NODE_ID.fullmatch(node_id):
        raise InvalidArgument(
            "node_id",
            f"{node_id[:MAX_ID]!r} is not an id: letters, digits and . _ : - "
            f"(first a letter or digit), at most {MAX_ID} characters",
        )
    return node_id


def _check_short(field: str, value: str, *, required: bool) -> str:
    if not value and not required:
        return value
    if len(value) > MAX_SHORT or not _SHORT.fullmatch(value):
        raise InvalidArgument(
            field, f"{value[:MAX_SHORT]!r} is not a short name (letters, digits, . _ : -)"
        )
    return value


def _check_address(text: str) -> str:
    address = parse_host_port(text, field="address", allow_zero=False)
    try:
        unspecified = ipaddress.ip_address(address.host).is_unspecified
    except ValueError:
        unspecified = False
    if unspecified:
        raise InvalidArgument("address", f"{text!r} is not an address others can dial")
    return str(address)


def _check_dependencies(
    dependencies: Iterable[registry_pb2.Dependency],
) -> tuple[Dependency, ...]:
    checked: dict[str, Dependency] = {}
    for index, dependency in enumerate(dependencies):
        field = f"dependencies[{index}].service"
        check_service_name(field, dependency.service)
        if dependency.service in checked:
            raise InvalidArgument(field, f"{dependency.service!r} is listed twice")
        checked[dependency.service] = Dependency(
            service=dependency.service, required=dependency.required
        )
    return tuple(checked.values())


def _check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA:
        raise InvalidArgument("metadata", f"more than {MAX_METADATA} entries")
    for key, value in metadata.items():
        if not key or len(key) > MAX_SHORT:
            raise InvalidArgument("metadata", f"key {key[:MAX_SHORT]!r} is empty or too long")
        if len(value) > MAX_METADATA_VALUE:
            raise InvalidArgument(f"metadata[{key}]", f"longer than {MAX_METADATA_VALUE}")
    return dict(sorted(metadata.items()))


def _grant_ttl(request: registry_pb2.RegisterRequest, default: timedelta) -> timedelta:
    # Requests are clamped rather than refused, so a node asking for too much still runs;
    # the bus's own default is always allowed even if it lies outside the usual range.
    if not request.HasField("lease_ttl"):
        return default
    ttl = request.lease_ttl
    if ttl.seconds < 0 or ttl.nanos < 0 or ttl.nanos >= 1_000_000_000:
        raise InvalidArgument("lease_ttl", "is negative or malformed")
    if not ttl.seconds and not ttl.nanos:
        return default
    low, high = min(MIN_LEASE_TTL, default), max(MAX_LEASE_TTL, default)
    if ttl.seconds >= high.total_seconds():  # before timedelta() can overflow
        return high
    requested = timedelta(seconds=ttl.seconds, microseconds=ttl.nanos // 1000)
    return min(max(requested, low), high)
