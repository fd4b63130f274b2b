"""Type mappings compiled: a legacy IDL struct <-> a proto message, by the mapping's rules.

A :class:`TypeMapping` is built from a ``[types.NAME]`` table once the legacy stubs are
loaded and the proto messages known; building checks every name against both sides, so
a typo fails at start-up, naming the table and field, not at the first call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timezone
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from powerbus.adapters.corba.fields import enum_type, is_message, is_repeated
from powerbus.adapters.corba.legacy import values
from powerbus.adapters.corba.legacy.mapping import FieldSpec, TypeSpec
from powerbus.adapters.corba.stubs import Stubs, python_name
from powerbus.bus.kernel.errors import ConfigError

__all__ = ["Context", "TypeMapping", "idl_default", "proto_path", "read_path", "write_path"]

_TV_LONG_KINDS = {2, 3, 4, 5, 23, 24}  # short, long, ushort, ulong, long long, ulong long
_TV_FLOAT, _TV_DOUBLE, _TV_BOOLEAN, _TV_OCTET, _TV_ANY = 6, 7, 8, 10, 11
_TV_STRUCT, _TV_ENUM, _TV_STRING, _TV_SEQUENCE, _TV_ALIAS = 15, 17, 18, 19, 21


class Context:
    """What compiling a mapping needs: the stubs, code tables, types, the time zone."""

    def __init__(
        self,
        *,
        stubs: Stubs,
        codes: Mapping[str, Mapping[str, Any]],
        types: Mapping[str, TypeSpec],
        zone: timezone,
        source: str,
    ) -> None:
        self.stubs = stubs
        self.codes = codes
        self.type_specs = types
        self.zone = zone
        self.source = source
        self._types: dict[str, TypeMapping] = {}

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {problem}")

    def type(self, name: str, where: str) -> TypeMapping:
        mapping = self._types.get(name)
        if mapping is None:
            spec = self.type_specs.get(name)
            if spec is None:
                raise self.fail(
                    where, f"no type mapping {name!r} (types: {sorted(self.type_specs)})"
                )
            mapping = self._types[name] = TypeMapping(spec, self)
            mapping.build()
        return mapping

    def converter(self, name: str, field: FieldDescriptor | None, where: str) -> values.Converter:
        """The converter ``convert = name`` gives for a proto ``field``."""
        label = field.name if field is not None else where
        if not name:
            return values.identity()
        simple: dict[str, Callable[[], values.Converter]] = {
            "gbk": lambda: values.gbk(label),
            "yuan_to_fen": lambda: values.yuan_to_fen(label),
            "date": lambda: values.date(label, zone=self.zone),
            "row_token": lambda: values.row_token(label),
            "digits": values.digits,
        }
        if name in simple:
            return simple[name]()
        if name.startswith("code:"):
            return self.code_table(name[5:], field, where)
        known = ", ".join([*simple, "code:TABLE"])
        raise self.fail(where, f"unknown converter {name!r}; known: {known}")

    def code_table(self, name: str, field: FieldDescriptor | None, where: str) -> values.CodeTable:
        codes = self.codes.get(name)
        if codes is None:
            raise self.fail(where, f"no code table {name!r} (codes: {sorted(self.codes)})")
        listed = {k: v for k, v in codes.items() if k != "_default"}
        table = values.CodeTable(
            name, listed, field=field.name if field else where, default=codes.get("_default")
        )
        if field is None or field.type != FieldDescriptor.TYPE_ENUM:
            return table
        enum = enum_type(field)

        def number(value: Any) -> int:
            if not isinstance(value, str) or value not in enum.values_by_name:
                raise self.fail(f"codes.{name}", f"{value!r} is not a value of {enum.full_name}")
            return int(enum.values_by_name[value].number)

        return table.mapped(number)

    def legacy_struct(self, scoped: str, where: str) -> Any:
        descriptor = _resolved(_lookup(self.stubs, scoped, self, where))
        if descriptor[0] != _TV_STRUCT:
            raise self.fail(where, f"{scoped} is not a struct")
        return descriptor


def _lookup(stubs: Stubs, scoped: str, context: Context, where: str) -> Any:
    try:
        return stubs.descriptor(scoped)
    except Exception:
        raise context.fail(where, f"the legacy IDL declares no {scoped}") from None


def _resolved(descriptor: Any) -> Any:
    while isinstance(descriptor, tuple) and descriptor[0] == _TV_ALIAS:
        descriptor = descriptor[3]
    return descriptor


def idl_default(descriptor: Any) -> Any:
    """The zero value of an IDL type: what a struct member nobody maps is sent as."""
    from omniORB import CORBA

    descriptor = _resolved(descriptor)
    kind = descriptor if isinstance(descriptor, int) else descriptor[0]
    if kind in _TV_LONG_KINDS:
        return 0
    if kind in (_TV_FLOAT, _TV_DOUBLE):
        return 0.0
    if kind == _TV_BOOLEAN:
        return False
    if kind == _TV_STRING:
        return ""
    if kind == _TV_ANY:
        return CORBA.Any(CORBA.TC_null, None)
    if kind == _TV_SEQUENCE:
        return b"" if _resolved(descriptor[1]) == _TV_OCTET else []
    if kind == _TV_ENUM:
        return descriptor[3][0]
    if kind == _TV_STRUCT:
        return descriptor[1](*[idl_default(d) for d in descriptor[5::2]])
    raise ConfigError(f"no default for IDL type kind {kind}")


def proto_path(
    message: Descriptor, path: str, *, where: str, context: Context
) -> list[FieldDescriptor]:
    """The fields along ``a.b.c`` from ``message``; all but the last singular messages."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for part in path.split("."):
        if current is None:
            raise context.fail(where, f"{path}: {fields[-1].name} is not a message")
        field = current.fields_by_name.get(part)
        if field is None:
            raise context.fail(where, f"{current.full_name} has no field {part!r}")
        fields.append(field)
        current = field.message_type if is_message(field) and not is_repeated(field) else None
    return fields


def read_path(message: Message, fields: list[FieldDescriptor]) -> Any:
    """The value at a path: a list for repeated fields, None for an unset message."""
    for field in fields[:-1]:
        message = getattr(message, field.name)
    leaf = fields[-1]
    if is_message(leaf) and not is_repeated(leaf):
        return getattr(message, leaf.name) if message.HasField(leaf.name) else None
    return getattr(message, leaf.name)


def write_path(message: Message, fields: list[FieldDescriptor], value: Any) -> None:
    """Set a singular value at a path (default values are left unset, as proto3 would)."""
    if value is None or (not isinstance(value, Message) and not value):
        return
    for field in fields[:-1]:
        message = getattr(message, field.name)
    leaf = fields[-1]
    if isinstance(value, Message):
        getattr(message, leaf.name).CopyFrom(value)
    else:
        setattr(message, leaf.name, value)


class TypeMapping:
    """One ``[types.NAME]``: :meth:`to_proto` / :meth:`fill` and :meth:`to_legacy`."""

    def __init__(self, spec: TypeSpec, context: Context) -> None:
        self.spec = spec
        self._context = context
        self.message_class: type[Message] = Message  # set by build()
        self.descriptor: Descriptor | None = None
        self._struct: Any = None
        self._members: dict[str, Any] = {}
        self._to_proto: list[Callable[[Any, Message], None]] = []
        self._to_legacy: list[Callable[[Message, dict[str, Any]], None]] = []

    @property
    def proto_name(self) -> str:
        return self.spec.proto

    def build(self) -> None:
        from google.protobuf import descriptor_pool

        where = f"types.{self.spec.name}"
        try:
            self.descriptor = descriptor_pool.Default().FindMessageTypeByName(self.spec.proto)
        except KeyError:
            raise self._context.fail(where, f"unknown proto message {self.spec.proto}") from None
        self.message_class = GetMessageClass(self.descriptor)
        self._struct = self._context.legacy_struct(self.spec.legacy, f"{where}.legacy")
        self._members = dict(zip(self._struct[4::2], self._struct[5::2], strict=True))
        for spec in self.spec.fields:
            self._rule(spec)

    def _rule(self, spec: FieldSpec) -> None:
        context = self._context
        assert self.descriptor is not None
        fields = proto_path(self.descriptor, spec.proto, where=spec.where, context=context)
        leaf = fields[-1]
        if spec.value is not None:
            constant = spec.value
            if leaf.type == FieldDescriptor.TYPE_ENUM:
                constant = _enum_number(leaf, constant, spec.where, context)
            self._to_proto.append(lambda struct, message: write_path(message, fields, constant))
            return
        member = python_name(spec.legacy)
        if member not in self._members:
            raise context.fail(spec.where, f"{self.spec.legacy} has no member {spec.legacy!r}")
        nested = context.type(spec.type, spec.where) if spec.type else None
        convert = context.converter(spec.convert, leaf, f"{spec.where}.convert")
        if leaf.type == FieldDescriptor.TYPE_ENUM and not spec.convert:
            raise context.fail(
                spec.where, f'{leaf.full_name} is an enum: give convert = "code:TABLE"'
            )
        if spec.property:
            self._property_rule(spec, member, fields, convert)
            return
        if is_repeated(leaf):
            self._to_proto.append(_repeated_to_proto(member, fields, convert, nested))
            self._to_legacy.append(_repeated_to_legacy(member, fields, convert, nested))
        else:
            self._to_proto.append(_single_to_proto(member, fields, convert, nested))
            self._to_legacy.append(_single_to_legacy(member, fields, convert, nested))

    def _property_rule(
        self, spec: FieldSpec, member: str, fields: list[FieldDescriptor], convert: values.Converter
    ) -> None:
        bag = _resolved(self._members[member])
        element = _resolved(bag[1]) if bag[0] == _TV_SEQUENCE else None
        if element is None or element[0] != _TV_STRUCT or tuple(element[4::2]) != ("name", "value"):
            raise self._context.fail(
                spec.where, f"{spec.legacy} is not a property bag (sequence of {{name, value}})"
            )
        make_property = element[1]
        name = spec.property
        type_code = any_type_code(spec.tc, self._context, spec.where) if spec.tc else None

        def to_proto(struct: Any, message: Message) -> None:
            for prop in getattr(struct, member):
                if prop.name == name:
                    held = prop.value.value()
                    if held is not None:
                        write_path(message, fields, convert.to_proto(held))
                    return

        def to_legacy(message: Message, members: dict[str, Any]) -> None:
            value = read_path(message, fields)
            if value:
                legacy = convert.to_legacy(value)
                members[member].append(make_property(name, to_any(legacy, type_code)))

        self._to_proto.append(to_proto)
        self._to_legacy.append(to_legacy)

    # --- running --------------------------------------------------------------------------

    def to_proto(self, struct: Any) -> Message:
        message = self.message_class()
        self.fill(message, struct)
        return message

    def fill(self, message: Message, struct: Any) -> None:
        for rule in self._to_proto:
            rule(struct, message)

    def to_legacy(self, message: Message) -> Any:
        members = {name: idl_default(d) for name, d in self._members.items()}
        for rule in self._to_legacy:
            rule(message, members)
        return self._struct[1](**members)


def _enum_number(field: FieldDescriptor, value: Any, where: str, context: Context) -> int:
    enum = enum_type(field)
    if isinstance(value, str) and value in enum.values_by_name:
        return int(enum.values_by_name[value].number)
    raise context.fail(where, f"{value!r} is not a value of {enum.full_name}")


def _single_to_proto(
    member: str,
    fields: list[FieldDescriptor],
    convert: values.Converter,
    nested: TypeMapping | None,
) -> Callable[[Any, Message], None]:
    if nested is not None:

        def fill(struct: Any, message: Message) -> None:
            target = message
            for field in fields:
                target = getattr(target, field.name)
            nested.fill(target, getattr(struct, member))

        return fill
    return lambda struct, message: write_path(
        message, fields, convert.to_proto(getattr(struct, member))
    )


def _single_to_legacy(
    member: str,
    fields: list[FieldDescriptor],
    convert: values.Converter,
    nested: TypeMapping | None,
) -> Callable[[Message, dict[str, Any]], None]:
    def to_legacy(message: Message, members: dict[str, Any]) -> None:
        value = read_path(message, fields)
        if nested is not None:
            if value is not None:
                members[member] = nested.to_legacy(value)
        elif value is not None:
            members[member] = convert.to_legacy(value)

    return to_legacy


def _repeated_to_proto(
    member: str,
    fields: list[FieldDescriptor],
    convert: values.Converter,
    nested: TypeMapping | None,
) -> Callable[[Any, Message], None]:
    def to_proto(struct: Any, message: Message) -> None:
        parent = message
        for field in fields[:-1]:
            parent = getattr(parent, field.name)
        target = getattr(parent, fields[-1].name)
        if nested is not None:
            for item in getattr(struct, member):
                nested.fill(target.add(), item)
        else:
            target.extend([convert.to_proto(item) for item in getattr(struct, member)])

    return to_proto


def _repeated_to_legacy(
    member: str,
    fields: list[FieldDescriptor],
    convert: values.Converter,
    nested: TypeMapping | None,
) -> Callable[[Message, dict[str, Any]], None]:
    def to_legacy(message: Message, members: dict[str, Any]) -> None:
        items = read_path(message, fields)
        if nested is not None:
            members[member] = [nested.to_legacy(item) for item in items]
        else:
            members[member] = [convert.to_legacy(item) for item in items]

    return to_legacy


_BASIC_TYPE_CODES = {
    "string": "TC_string",
    "long": "TC_long",
    "double": "TC_double",
    "boolean": "TC_boolean",
}


def any_type_code(name: str, context: Context, where: str) -> Any:
    """The TypeCode named by a mapping's ``tc``: a basic type or an IDL scoped name."""
    from omniORB import CORBA

    if name in _BASIC_TYPE_CODES:
        return getattr(CORBA, _BASIC_TYPE_CODES[name])
    type_code = context.stubs.type_code(name)
    if type_code is None:
        raise context.fail(where, f"tc: the legacy IDL declares no {name}")
    return type_code


def to_any(value: Any, type_code: Any = None) -> Any:
    """A CORBA any holding ``value``; the TypeCode is inferred when not given."""
    from omniORB import CORBA

    if type_code is None:
        if isinstance(value, bool):
            type_code = CORBA.TC_boolean
        elif isinstance(value, int):
            type_code = CORBA.TC_long
        elif isinstance(value, float):
            type_code = CORBA.TC_double
        elif isinstance(value, bytes):
            import omniORB

            octets = (omniORB.tcInternal.tv_sequence, omniORB.tcInternal.tv_octet, 0)
            type_code = omniORB.tcInternal.createTypeCode(octets)
        else:
            type_code = CORBA.TC_string
    return CORBA.Any(type_code, value)
