"""An index of the messages, enums and services of a FileDescriptorSet, in declaration order.

Full names carry no leading dot (``powerbus.echo.v1.EchoRequest``). ``path`` is the name
relative to the package (``("WatchEvent", "Kind")`` for a nested enum); ``order`` is a
global sequence number that follows the files sorted by name and, within a file, the
order in which protoc lists the declarations, so everything built from the index is
deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorSet,
    ServiceDescriptorProto,
)

__all__ = [
    "EnumInfo",
    "MessageInfo",
    "ProtoIndex",
    "ServiceInfo",
    "is_message_field",
    "real_oneof",
]

_MESSAGE_TYPES = (FieldDescriptorProto.TYPE_MESSAGE, FieldDescriptorProto.TYPE_GROUP)


@dataclass(frozen=True, kw_only=True)
class MessageInfo:
    full: str
    package: str
    path: tuple[str, ...]
    file: str
    order: int
    proto: DescriptorProto

    @property
    def is_map_entry(self) -> bool:
        return self.proto.options.map_entry


@dataclass(frozen=True, kw_only=True)
class EnumInfo:
    full: str
    package: str
    path: tuple[str, ...]
    file: str
    order: int
    proto: EnumDescriptorProto


@dataclass(frozen=True, kw_only=True)
class ServiceInfo:
    full: str
    package: str
    file: str
    order: int
    proto: ServiceDescriptorProto


@dataclass(kw_only=True)
class ProtoIndex:
    """Every declaration of a descriptor set, by full name."""

    messages: dict[str, MessageInfo] = field(default_factory=dict)
    enums: dict[str, EnumInfo] = field(default_factory=dict)
    services: dict[str, ServiceInfo] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, descriptor_set: FileDescriptorSet) -> ProtoIndex:
        index = cls()
        counter = iter(range(1 << 62))
        for file in sorted(descriptor_set.file, key=lambda f: f.name):
            index.files.append(file.name)
            package = file.package
            for message in file.message_type:
                index._add_message(message, package, (), file.name, counter)
            for enum in file.enum_type:
                index._add_enum(enum, package, (), file.name, counter)
            for service in file.service:
                full = _join(package, (service.name,))
                index.services[full] = ServiceInfo(
                    full=full, package=package, file=file.name, order=next(counter), proto=service
                )
        return index

    def _add_message(
        self,
        proto: DescriptorProto,
        package: str,
        outer: tuple[str, ...],
        file: str,
        counter: Iterator[int],
    ) -> None:
        path = (*outer, proto.name)
        full = _join(package, path)
        self.messages[full] = MessageInfo(
            full=full, package=package, path=path, file=file, order=next(counter), proto=proto
        )
        for nested in proto.nested_type:
            self._add_message(nested, package, path, file, counter)
        for enum in proto.enum_type:
            self._add_enum(enum, package, path, file, counter)

    def _add_enum(
        self,
        proto: EnumDescriptorProto,
        package: str,
        outer: tuple[str, ...],
        file: str,
        counter: Iterator[int],
    ) -> None:
        path = (*outer, proto.name)
        full = _join(package, path)
        self.enums[full] = EnumInfo(
            full=full, package=package, path=path, file=file, order=next(counter), proto=proto
        )

    def message_fields(self, message: MessageInfo) -> list[tuple[FieldDescriptorProto, str]]:
        """The message-typed fields of ``message`` with their target's full name."""
        return [
            (f, f.type_name.lstrip(".")) for f in message.proto.field if f.type in _MESSAGE_TYPES
        ]


def is_message_field(field: FieldDescriptorProto) -> bool:
    return field.type in _MESSAGE_TYPES


def real_oneof(field: FieldDescriptorProto) -> bool:
    """Whether the field belongs to a real oneof (not proto3 ``optional``'s synthetic one)."""
    return field.HasField("oneof_index") and not field.proto3_optional


def _join(package: str, path: tuple[str, ...]) -> str:
    return ".".join((package, *path)) if package else ".".join(path)
