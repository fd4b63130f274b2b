"""Contract compatibility: what changed between two versions of the protos and of the IDL.

Like ``buf breaking``, two descriptor sets are compared declaration by declaration and
every change that breaks a client built against the old version is a *breaking* finding:

- protos: a message, field, enum, enum value, service or rpc removed; a field renumbered,
  renamed, retyped, moved into or out of a oneof, or turned repeated/singular; an enum
  value renumbered or renamed; an rpc's request, response or streaming changed;
- the generated IDL: a declaration removed or turned into another kind; a struct member,
  union case, enumerator or operation removed; a member's, case's or typedef's type
  changed; an operation's signature changed or an exception dropped from its raises.

Additions are compatible. Some additions still change the IDL's wire layout (CDR has no
room for a new struct member, and enumerators are sent by position), so CORBA peers
compiled against the old IDL must be rebuilt: those are reported as *warnings*.

>>> findings = compare(old_descriptor_set, new_descriptor_set)  # doctest: +SKIP
>>> [f.rule for f in findings if f.breaking]  # doctest: +SKIP
['FIELD_NO_DELETE', 'IDL_MEMBER_NO_DELETE']
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from google.protobuf.descriptor_pb2 import FieldDescriptorProto, FileDescriptorSet

from powerbus.adapters.corba.idl._compat_idl import idl_changes
from powerbus.adapters.corba.idl._index import ProtoIndex, real_oneof

__all__ = ["Finding", "Severity", "Surface", "compare", "proto_changes"]


class Severity(str, Enum):
    BREAKING = "breaking"
    WARNING = "warning"


class Surface(str, Enum):
    """Which contract a finding is about."""

    PROTO = "proto"
    IDL = "idl"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One incompatible (or rebuild-requiring) change.

    >>> Finding(surface=Surface.PROTO, rule="RPC_NO_DELETE", subject="a.v1.S.M",
    ...         message="rpc M of service a.v1.S was removed").breaking
    True
    """

    surface: Surface
    rule: str
    subject: str
    """The proto full name or IDL scoped name the change is about."""
    message: str
    severity: Severity = Severity.BREAKING
    file: str = ""
    """The .proto file (old version) that declared it; empty for IDL findings."""

    @property
    def breaking(self) -> bool:
        return self.severity is Severity.BREAKING

    def line(self) -> str:
        """One line for people: ``breaking proto FIELD_NO_DELETE file: message``."""
        where = f"{self.file}: " if self.file else ""
        return f"{self.severity.value:8} {self.surface.value:5} {self.rule}  {where}{self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "surface": self.surface.value,
            "rule": self.rule,
            "severity": self.severity.value,
            "subject": self.subject,
            "file": self.file,
            "message": self.message,
        }


def compare(old: FileDescriptorSet, new: FileDescriptorSet) -> list[Finding]:
    """Every breaking change and rebuild warning from ``old`` to ``new``: protos, then IDL."""
    findings = proto_changes(old, new)
    findings += [
        Finding(
            surface=Surface.IDL,
            rule=change.rule,
            subject=change.subject,
            message=change.message,
            severity=Severity.BREAKING if change.breaking else Severity.WARNING,
        )
        for change in idl_changes(old, new)
    ]
    return findings


def proto_changes(old: FileDescriptorSet, new: FileDescriptorSet) -> list[Finding]:
    """The breaking changes between two versions of the protos (buf's FILE-level rules)."""
    return _ProtoRules(ProtoIndex.build(old), ProtoIndex.build(new)).run()


_LABEL_NAMES = {
    FieldDescriptorProto.LABEL_OPTIONAL: "singular",
    FieldDescriptorProto.LABEL_REQUIRED: "required",
    FieldDescriptorProto.LABEL_REPEATED: "repeated",
}
_TYPE_NAMES = {
    value: name.removeprefix("TYPE_").lower() for name, value in FieldDescriptorProto.Type.items()
}


class _ProtoRules:
    def __init__(self, old: ProtoIndex, new: ProtoIndex) -> None:
        self._old = old
        self._new = new
        self._findings: list[Finding] = []

    def run(self) -> list[Finding]:
        for name, message in self._old.messages.items():
            if message.is_map_entry:
                continue  # judged as the map field's type
            if name not in self._new.messages:
                self._add("MESSAGE_NO_DELETE", name, f"message {name} was removed", message.file)
            else:
                self._fields(name)
        for name, enum in self._old.enums.items():
            if name not in self._new.enums:
                self._add("ENUM_NO_DELETE", name, f"enum {name} was removed", enum.file)
            else:
                self._enum_values(name)
        for name, service in self._old.services.items():
            if name not in self._new.services:
                self._add("SERVICE_NO_DELETE", name, f"service {name} was removed", service.file)
            else:
                self._methods(name)
        return self._findings

    def _add(self, rule: str, subject: str, message: str, file: str) -> None:
        self._findings.append(
            Finding(surface=Surface.PROTO, rule=rule, subject=subject, message=message, file=file)
        )

    def _fields(self, name: str) -> None:
        old, new = self._old.messages[name], self._new.messages[name]
        by_number = {f.number: f for f in new.proto.field}
        by_name = {f.name: f for f in new.proto.field}
        for field in old.proto.field:
            subject = f"{name}.{field.name}"
            what = f'field {field.number} "{field.name}" of message {name}'
            moved, match = by_name.get(field.name), by_number.get(field.number)
            if moved is not None and moved.number != field.number:
                self._add(
                    "FIELD_SAME_NUMBER",
                    subject,
                    f"{what} was renumbered to {moved.number}",
                    old.file,
                )
                continue
            if match is None:
                self._add("FIELD_NO_DELETE", subject, f"{what} was removed", old.file)
                continue
            if match.name != field.name:
                self._add(
                    "FIELD_SAME_NAME", subject, f'{what} was renamed "{match.name}"', old.file
                )
            before, after = self._type_of(self._old, field), self._type_of(self._new, match)
            if before != after:
                self._add(
                    "FIELD_SAME_TYPE", subject, f"{what} changed type {before} -> {after}", old.file
                )
            elif field.label != match.label:
                self._add(
                    "FIELD_SAME_LABEL",
                    subject,
                    f"{what} changed from {_LABEL_NAMES[field.label]} to "
                    f"{_LABEL_NAMES[match.label]}",
                    old.file,
                )
            before_oneof = self._oneof(old.proto, field)
            after_oneof = self._oneof(new.proto, match)
            if before_oneof != after_oneof:
                self._add(
                    "FIELD_SAME_ONEOF",
                    subject,
                    f"{what} moved from oneof {before_oneof or '(none)'} to "
                    f"{after_oneof or '(none)'}",
                    old.file,
                )

    @staticmethod
    def _oneof(message: object, field: FieldDescriptorProto) -> str:
        if not real_oneof(field):
            return ""
        return str(message.oneof_decl[field.oneof_index].name)  # type: ignore[attr-defined]

    @staticmethod
    def _type_of(index: ProtoIndex, field: FieldDescriptorProto) -> str:
        if field.type_name:
            target = field.type_name.lstrip(".")
            entry = index.messages.get(target)
            if entry is not None and entry.is_map_entry:
                key, value = entry.proto.field[0], entry.proto.field[1]
                return (
                    f"map<{_ProtoRules._type_of(index, key)}, {_ProtoRules._type_of(index, value)}>"
                )
            return target
        return _TYPE_NAMES[field.type]

    def _enum_values(self, name: str) -> None:
        old, new = self._old.enums[name], self._new.enums[name]
        by_number = {v.number: v for v in new.proto.value}
        by_name = {v.name: v for v in new.proto.value}
        for value in old.proto.value:
            subject = f"{name}.{value.name}"
            what = f"enum value {value.name} ({value.number}) of {name}"
            moved, match = by_name.get(value.name), by_number.get(value.number)
            if moved is not None and moved.number != value.number:
                self._add(
                    "ENUM_VALUE_SAME_NUMBER",
                    subject,
                    f"{what} was renumbered to {moved.number}",
                    old.file,
                )
            elif match is None:
                self._add("ENUM_VALUE_NO_DELETE", subject, f"{what} was removed", old.file)
            elif moved is None:
                self._add(
                    "ENUM_VALUE_SAME_NAME", subject, f"{what} was renamed {match.name}", old.file
                )

    def _methods(self, name: str) -> None:
        old, new = self._old.services[name], self._new.services[name]
        by_name = {m.name: m for m in new.proto.method}
        for method in old.proto.method:
            subject = f"{name}.{method.name}"
            what = f"rpc {method.name} of service {name}"
            match = by_name.get(method.name)
            if match is None:
                self._add("RPC_NO_DELETE", subject, f"{what} was removed", old.file)
                continue
            for rule, part, before, after in (
                ("RPC_SAME_REQUEST_TYPE", "request", method.input_type, match.input_type),
                ("RPC_SAME_RESPONSE_TYPE", "response", method.output_type, match.output_type),
            ):
                if before != after:
                    self._add(
                        rule,
                        subject,
                        f"{what} changed {part} type {before.lstrip('.')} -> {after.lstrip('.')}",
                        old.file,
                    )
            for rule, part, was, now in (
                (
                    "RPC_SAME_CLIENT_STREAMING",
                    "client",
                    method.client_streaming,
                    match.client_streaming,
                ),
                (
                    "RPC_SAME_SERVER_STREAMING",
                    "server",
                    method.server_streaming,
                    match.server_streaming,
                ),
            ):
                if was != now:
                    state = "became" if now else "is no longer"
                    self._add(rule, subject, f"{what} {state} {part}-streaming", old.file)
