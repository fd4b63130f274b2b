"""Method shapes and descriptor sets: what the registry, the router and every node agree on
about a service's methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from google.protobuf import descriptor, descriptor_pb2

__all__ = [
    "Idempotency",
    "MethodInfo",
    "MethodKind",
    "descriptor_set_for",
    "idempotency_of",
    "method_kind",
]


class MethodKind(str, Enum):
    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    CLIENT_STREAM = "client_stream"
    BIDI_STREAM = "bidi_stream"


class Idempotency(str, Enum):
    """The proto ``idempotency_level`` option of a method."""

    UNKNOWN = "unknown"
    IDEMPOTENT = "idempotent"
    NO_SIDE_EFFECTS = "no_side_effects"


_LEVELS = {
    descriptor_pb2.MethodOptions.IDEMPOTENT: Idempotency.IDEMPOTENT,
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS: Idempotency.NO_SIDE_EFFECTS,
}


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """One method of a registered service."""

    path: str
    """``/pkg.Service/Method``, as on the wire."""
    service: str
    kind: MethodKind
    idempotency: Idempotency


def idempotency_of(options: descriptor_pb2.MethodOptions) -> Idempotency:
    """The ``idempotency_level`` a method's options declare."""
    return _LEVELS.get(options.idempotency_level, Idempotency.UNKNOWN)


def method_kind(client_streaming: bool, server_streaming: bool) -> MethodKind:
    if client_streaming and server_streaming:
        return MethodKind.BIDI_STREAM
    if client_streaming:
        return MethodKind.CLIENT_STREAM
    if server_streaming:
        return MethodKind.SERVER_STREAM
    return MethodKind.UNARY


def descriptor_set_for(*files: descriptor.FileDescriptor) -> descriptor_pb2.FileDescriptorSet:
    """A ``FileDescriptorSet`` of ``files`` and everything they import, dependencies first.

    This is what a node registers so the bus can route and reflect its services:

    >>> from powerbus.echo.v1 import echo_pb2
    >>> [f.name for f in descriptor_set_for(echo_pb2.DESCRIPTOR).file]
    ['google/protobuf/duration.proto', 'powerbus/echo/v1/echo.proto']
    """
    result = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def visit(f: descriptor.FileDescriptor) -> None:
        if f.name in seen:
            return
        seen.add(f.name)
        for dependency in f.dependencies:
            visit(dependency)
        f.CopyToProto(result.file.add())

    for f in files:
        visit(f)
    return result
