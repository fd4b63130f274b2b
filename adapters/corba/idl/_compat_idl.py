"""Compatibility rules for the generated IDL: what a CORBA peer built on the old IDL feels.

Declarations are matched by IDL scoped name, struct members and enumerators by name,
union cases by label, operations by name. CDR is positional, so a member added anywhere
or an enumerator that moves is a rebuild warning; anything removed or retyped breaks.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor_pb2 import FileDescriptorSet

from powerbus.adapters.corba.idl._builder import build_decls
from powerbus.adapters.corba.idl._index import ProtoIndex
from powerbus.adapters.corba.idl._model import Decl, DeclKind, Member, Operation
from powerbus.adapters.corba.idl._naming import assign_names
from powerbus.adapters.corba.idl._writer import type_texts

__all__ = ["IdlChange", "idl_changes"]

_REBUILD = "CORBA peers built on the old IDL must be rebuilt"


@dataclass(frozen=True, slots=True)
class IdlChange:
    rule: str
    subject: str
    message: str
    breaking: bool = True


@dataclass(frozen=True, slots=True)
class _Version:
    decls: dict[str, Decl]
    """By IDL scoped name."""
    text: dict[str, str]
    """Type key -> IDL type text (fully qualified)."""

    @classmethod
    def of(cls, descriptor_set: FileDescriptorSet) -> _Version:
        decls = build_decls(ProtoIndex.build(descriptor_set))
        modules = assign_names(decls)
        scoped = {"::" + "::".join((*modules[d.package], d.name)): d for d in decls.values()}
        return cls(decls=scoped, text=type_texts(decls, modules))

    def type(self, key: str | None, primitive: str | None) -> str:
        return self.text[key] if key is not None else str(primitive)


def idl_changes(old: FileDescriptorSet, new: FileDescriptorSet) -> list[IdlChange]:
    """Breaking changes and rebuild warnings between the IDL of ``old`` and of ``new``."""
    before, after = _Version.of(old), _Version.of(new)
    changes: list[IdlChange] = []
    for name, decl in before.decls.items():
        match = after.decls.get(name)
        kind = decl.kind.value
        if match is None and decl.kind is DeclKind.TYPEDEF:
            # Helper typedefs come and go with their uses; a use that went is reported.
            changes.append(
                IdlChange("IDL_TYPEDEF_UNUSED", name, f"typedef {name} is no longer used", False)
            )
        elif match is None:
            changes.append(IdlChange("IDL_DECL_NO_DELETE", name, f"{kind} {name} was removed"))
        elif match.kind is not decl.kind:
            changes.append(
                IdlChange(
                    "IDL_DECL_SAME_KIND",
                    name,
                    f"{kind} {name} is now a {match.kind.value}",
                )
            )
        else:
            changes += _compare(name, decl, match, before, after)
    return changes


def _compare(name: str, old: Decl, new: Decl, before: _Version, after: _Version) -> list[IdlChange]:
    if old.kind in (DeclKind.STRUCT, DeclKind.EXCEPTION):
        return _members(name, old.members, new.members, before, after)
    if old.kind is DeclKind.UNION:
        return _cases(name, old.members, new.members, before, after)
    if old.kind is DeclKind.ENUM:
        return _enumerators(name, old, new)
    if old.kind is DeclKind.INTERFACE:
        return _operations(name, old.operations, new.operations, before, after)
    assert old.element is not None and new.element is not None
    was = f"sequence<{before.type(old.element.key, old.element.primitive)}, {old.bound}>"
    now = f"sequence<{after.type(new.element.key, new.element.primitive)}, {new.bound}>"
    if was != now:
        return [IdlChange("IDL_TYPEDEF_SAME_TYPE", name, f"typedef {name} changed {was} -> {now}")]
    return []


def _member_type(member: Member, version: _Version) -> str:
    return version.type(member.type.key, member.type.primitive)


def _members(
    name: str, old: list[Member], new: list[Member], before: _Version, after: _Version
) -> list[IdlChange]:
    changes = []
    by_name = {m.name.lower(): m for m in new}
    for member in old:
        match = by_name.get(member.name.lower())
        subject = f"{name}.{member.name}"
        if match is None:
            changes.append(
                IdlChange(
                    "IDL_MEMBER_NO_DELETE", subject, f"member {member.name} of {name} was removed"
                )
            )
            continue
        was, now = _member_type(member, before), _member_type(match, after)
        if was != now:
            changes.append(
                IdlChange(
                    "IDL_MEMBER_SAME_TYPE",
                    subject,
                    f"member {member.name} of {name} changed type {was} -> {now}",
                )
            )
    old_names = [m.name.lower() for m in old]
    new_names = [m.name.lower() for m in new]
    if [n for n in new_names if n in old_names] != [n for n in old_names if n in new_names]:
        changes.append(
            IdlChange("IDL_MEMBER_SAME_ORDER", name, f"members of {name} moved; {_REBUILD}", False)
        )
    added = [m.name for m in new if m.name.lower() not in old_names]
    if added:
        changes.append(
            IdlChange(
                "IDL_MEMBER_ADDED",
                name,
                f"{name} gained member(s) {', '.join(added)}; {_REBUILD}",
                False,
            )
        )
    return changes


def _cases(
    name: str, old: list[Member], new: list[Member], before: _Version, after: _Version
) -> list[IdlChange]:
    changes = []
    by_label = {m.label: m for m in new}
    for case in old:
        match = by_label.get(case.label)
        subject = f"{name}.{case.name}"
        if match is None:
            changes.append(
                IdlChange("IDL_CASE_NO_DELETE", subject, f"case {case.label} of {name} was removed")
            )
        elif match.name != case.name:
            changes.append(
                IdlChange(
                    "IDL_CASE_SAME_NAME",
                    subject,
                    f"case {case.label} of {name} was renamed {case.name} -> {match.name}",
                )
            )
        elif _member_type(case, before) != _member_type(match, after):
            changes.append(
                IdlChange(
                    "IDL_CASE_SAME_TYPE",
                    subject,
                    f"case {case.label} of {name} changed type "
                    f"{_member_type(case, before)} -> {_member_type(match, after)}",
                )
            )
    return changes


def _enumerators(name: str, old: Decl, new: Decl) -> list[IdlChange]:
    changes = []
    now = [e.name for e in new.enumerators]
    was = [e.name for e in old.enumerators]
    for ordinal, enumerator in enumerate(was):
        subject = f"{name}::{enumerator}"
        if enumerator not in now:
            changes.append(
                IdlChange(
                    "IDL_ENUMERATOR_NO_DELETE",
                    subject,
                    f"enumerator {enumerator} of {name} was removed",
                )
            )
        elif now.index(enumerator) != ordinal:
            changes.append(
                IdlChange(
                    "IDL_ENUMERATOR_SAME_ORDINAL",
                    subject,
                    f"enumerator {enumerator} of {name} moved from ordinal {ordinal} to "
                    f"{now.index(enumerator)}; {_REBUILD}",
                    False,
                )
            )
    added = [e for e in now if e not in was]
    if added:
        changes.append(
            IdlChange(
                "IDL_ENUMERATOR_ADDED",
                name,
                f"{name} gained enumerator(s) {', '.join(added)}; {_REBUILD}",
                False,
            )
        )
    return changes


def _signature(operation: Operation, version: _Version) -> str:
    reply = version.type(operation.reply.key, operation.reply.primitive)
    request = version.type(operation.request.key, operation.request.primitive)
    return f"{reply} {operation.name}(in {request})"


def _operations(
    name: str, old: list[Operation], new: list[Operation], before: _Version, after: _Version
) -> list[IdlChange]:
    changes = []
    by_name = {op.name: op for op in new}
    for operation in old:
        match = by_name.get(operation.name)
        subject = f"{name}::{operation.name}"
        if match is None:
            changes.append(
                IdlChange(
                    "IDL_OPERATION_NO_DELETE",
                    subject,
                    f"operation {operation.name} of {name} was removed",
                )
            )
            continue
        was, now = _signature(operation, before), _signature(match, after)
        if was != now:
            changes.append(
                IdlChange(
                    "IDL_OPERATION_SAME_SIGNATURE",
                    subject,
                    f"operation {operation.name} of {name} changed: {was} -> {now}",
                )
            )
        raised_before = {before.type(r.key, r.primitive) for r in operation.raises}
        raised_after = {after.type(r.key, r.primitive) for r in match.raises}
        dropped = sorted(raised_before - raised_after)
        if dropped:
            changes.append(
                IdlChange(
                    "IDL_OPERATION_SAME_RAISES",
                    subject,
                    f"operation {operation.name} of {name} no longer raises {', '.join(dropped)}",
                )
            )
    return changes
