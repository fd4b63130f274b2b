"""Protobuf messages <-> the IDL structs generated from them, field by field.

Nothing here knows any particular message: a :class:`MessageCodec` is built on first use
from the message's descriptor, the proto -> IDL names of ``powerbus.adapters.corba.idl.idl_names``
and the omniORB type descriptors of the loaded stubs, then reused. The IDL follows the
mapping of docs/idl-mapping.md, so each proto shape has one IDL shape:

- scalars and ``bytes`` as they are; enums **by name** (an IDL enumerator is an ordinal);
- messages as structs, ``repeated`` as sequences, maps as sequences of entry structs;
- a oneof as a union switched on the field number (0: none set);
- a message reaching itself through a singular field as ``sequence<T, 1>`` (empty: unset);
  other recursion cut by an ``any`` holding the struct (``tk_null``: unset).

IDL carries no presence, so a struct member with its default value leaves the proto
field unset: a zero Timestamp arrives as no Timestamp.

>>> codec = IdlCodec(names=idl_names(fds))  # doctest: +SKIP
>>> requests = codec.message(EchoRequest.DESCRIPTOR)  # doctest: +SKIP
>>> requests.to_proto(requests.to_idl(EchoRequest(message="你好"))).message  # doctest: +SKIP
'你好'
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from powerbus.adapters.corba.fields import enum_type, is_message, is_repeated, message_type
from powerbus.adapters.corba.ior import repository_id
from powerbus.adapters.corba.stubs import python_name
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["IdlCodec", "MessageCodec"]

_TV_ANY, _TV_STRUCT, _TV_UNION, _TV_SEQUENCE, _TV_ALIAS, _TV_INDIRECT = 11, 15, 16, 19, 21, -1

ToIdl = Callable[[Message], Any]
ToProto = Callable[[Message, Any], None]


def _find_type(repo_id: str) -> Any:
    import omniORB

    descriptor = omniORB.findType(repo_id)
    if descriptor is None:
        raise InvalidArgument("idl", f"no stubs loaded for {repo_id}")
    return descriptor


def _resolved(descriptor: Any) -> Any:
    """Follow typedefs and recursive placeholders to the real type descriptor."""
    while isinstance(descriptor, tuple) and descriptor[0] in (_TV_ALIAS, _TV_INDIRECT):
        alias = descriptor[0] == _TV_ALIAS
        descriptor = descriptor[3] if alias else _find_type(descriptor[1][0])
    return descriptor


def _kind(descriptor: Any) -> int:
    return int(descriptor if isinstance(descriptor, int) else descriptor[0])


class IdlCodec:
    """Builds and caches the codec of every message it is asked for.

    ``names`` is ``idl_names()`` of a descriptor set holding the messages; the stubs of
    the IDL generated from it must be imported (``load_stubs``) before the first use.
    """

    def __init__(self, *, names: Mapping[str, str]) -> None:
        self._names = names
        self._messages: dict[str, MessageCodec] = {}
        self._enums: dict[str, _EnumCodec] = {}

    def message(self, descriptor: Descriptor) -> MessageCodec:
        """The codec of one message type (made on first use)."""
        codec = self._messages.get(descriptor.full_name)
        if codec is None:
            codec = self._messages[descriptor.full_name] = MessageCodec(self, descriptor)
            codec._build()  # after caching: a message may hold itself
        return codec

    def enum(self, descriptor: EnumDescriptor) -> _EnumCodec:
        codec = self._enums.get(descriptor.full_name)
        if codec is None:
            codec = self._enums[descriptor.full_name] = _EnumCodec(self, descriptor)
        return codec

    def scoped_name(self, proto_name: str) -> str:
        try:
            return self._names[proto_name]
        except KeyError:
            raise InvalidArgument("idl", f"the IDL has no counterpart of {proto_name}") from None

    def has_name(self, proto_name: str) -> bool:
        return proto_name in self._names


class _Value:
    """Converts single values: scalars and enums by ``to_proto``, messages by ``fill``."""

    is_message = False

    def to_idl(self, value: Any) -> Any:
        return value

    def to_proto(self, value: Any) -> Any:
        return value

    def fill(self, message: Message, value: Any) -> None:
        raise TypeError("not a message")


_SCALAR = _Value()


class _Struct(_Value):
    is_message = True

    def __init__(self, inner: MessageCodec) -> None:
        self._inner = inner

    def to_idl(self, value: Any) -> Any:
        return self._inner.to_idl(value)

    def fill(self, message: Message, value: Any) -> None:
        self._inner.fill(message, value)


class _HeldStruct(_Value):
    """A message field that closes a recursion cycle: an ``any`` holding the struct."""

    is_message = True

    def __init__(self, inner: MessageCodec) -> None:
        from omniORB import CORBA

        self._inner = inner
        self._type_code = CORBA.TypeCode(inner.repository_id)
        self._null = CORBA.Any(CORBA.TC_null, None)
        self._tk_null = CORBA.tk_null

    def to_idl(self, value: Any) -> Any:
        from omniORB import CORBA

        if not value.ListFields():
            return self._null  # unset: an any holding a default struct would never end
        return CORBA.Any(self._type_code, self._inner.to_idl(value))

    def fill(self, message: Message, value: Any) -> None:
        if value.typecode().kind() != self._tk_null:
            self._inner.fill(message, value.value())


def _fill_all(target: Any, values: Any, element: _Value) -> None:
    for value in values:
        element.fill(target.add(), value)


class _EnumCodec(_Value):
    """Enums by name: proto numbers <-> the IDL's enumerator objects."""

    is_message = False

    def __init__(self, codec: IdlCodec, descriptor: EnumDescriptor) -> None:
        idl = _resolved(_find_type(repository_id(codec.scoped_name(descriptor.full_name))))
        items = {item._n: item for item in idl[3]}
        self.full_name = descriptor.full_name
        self.by_number: dict[int, Any] = {}
        self.by_ordinal: dict[int, int] = {}
        for value in descriptor.values:
            key = f"{descriptor.full_name}.{value.name}"
            if not codec.has_name(key):
                continue  # an alias of a number already mapped
            item = items[codec.scoped_name(key)]
            self.by_number.setdefault(value.number, item)
            self.by_ordinal.setdefault(item._v, value.number)

    def to_idl(self, number: int) -> Any:
        try:
            return self.by_number[number]
        except KeyError:
            raise InvalidArgument("enum", f"{self.full_name} has no value {number}") from None

    def to_proto(self, item: Any) -> int:
        return self.by_ordinal[item._v]


class MessageCodec:
    """Converts one message type: :meth:`to_idl` and :meth:`to_proto` (or :meth:`fill`)."""

    def __init__(self, codec: IdlCodec, descriptor: Descriptor) -> None:
        self._codec = codec
        self.descriptor = descriptor
        self.message_class: type[Message] = GetMessageClass(descriptor)
        self.repository_id = repository_id(codec.scoped_name(descriptor.full_name))
        self.struct_class: Any = None
        self._to_idl: list[ToIdl] = []
        self._to_proto: list[ToProto] = []
        self._members: Callable[[Any], Any] = tuple

    def _build(self) -> None:
        idl = _resolved(_find_type(self.repository_id))
        self.struct_class = idl[1]
        members = dict(zip(idl[4::2], idl[5::2], strict=True))
        getter = operator.attrgetter(*members)
        self._members = getter if len(members) > 1 else lambda struct: (getter(struct),)
        by_member = self._proto_members()
        for member, member_type in members.items():
            source = by_member.get(member)
            if source is None:  # the placeholder of an empty message
                self._to_idl.append(lambda message: 0)
                self._to_proto.append(lambda message, value: None)
            elif isinstance(source, FieldDescriptor):
                to_idl, to_proto = self._field(source, _resolved(member_type))
                self._to_idl.append(to_idl)
                self._to_proto.append(to_proto)
            else:
                to_idl, to_proto = self._oneof(source, _resolved(member_type))
                self._to_idl.append(to_idl)
                self._to_proto.append(to_proto)

    def _proto_members(self) -> dict[str, FieldDescriptor | tuple[str, list[FieldDescriptor]]]:
        """IDL member name (as the stubs spell it) -> proto field or (oneof, its fields)."""
        full = self.descriptor.full_name
        found: dict[str, FieldDescriptor | tuple[str, list[FieldDescriptor]]] = {}
        for field in self.descriptor.fields:
            oneof = field.containing_oneof
            if oneof is not None and self._codec.has_name(f"{full}.{oneof.name}"):
                name = python_name(self._codec.scoped_name(f"{full}.{oneof.name}"))
                entry = found.setdefault(name, (oneof.name, []))
                assert isinstance(entry, tuple)
                entry[1].append(field)
            else:
                found[python_name(self._codec.scoped_name(f"{full}.{field.name}"))] = field
        return found

    # --- conversion -------------------------------------------------------------------

    def to_idl(self, message: Message) -> Any:
        """The IDL struct for ``message``."""
        return self.struct_class(*[convert(message) for convert in self._to_idl])

    def to_proto(self, struct: Any) -> Message:
        """A new message from the IDL struct ``struct``."""
        message = self.message_class()
        self.fill(message, struct)
        return message

    def fill(self, message: Message, struct: Any) -> None:
        """Set ``message``'s fields from ``struct`` (members in declaration order)."""
        for convert, value in zip(self._to_proto, self._members(struct), strict=True):
            convert(message, value)

    # --- one member -------------------------------------------------------------------

    def _field(self, field: FieldDescriptor, idl: Any) -> tuple[ToIdl, ToProto]:
        name = field.name
        if is_repeated(field) and is_message(field) and message_type(field).GetOptions().map_entry:
            return self._map(field, idl)
        if is_repeated(field):
            element = self._value(field, _resolved(idl[1]))
            if element.is_message:
                return (
                    lambda m: [element.to_idl(v) for v in getattr(m, name)],
                    lambda m, values: _fill_all(getattr(m, name), values, element),
                )
            return (
                lambda m: [element.to_idl(v) for v in getattr(m, name)],
                lambda m, values: getattr(m, name).extend([element.to_proto(v) for v in values]),
            )
        if is_message(field) and _kind(idl) == _TV_SEQUENCE:  # sequence<T, 1>: maybe unset
            inner = self._codec.message(message_type(field))

            def optional_to_proto(m: Message, value: Any) -> None:
                if value:
                    child = getattr(m, name)
                    child.SetInParent()
                    inner.fill(child, value[0])

            return (
                lambda m: [inner.to_idl(getattr(m, name))] if m.HasField(name) else [],
                optional_to_proto,
            )
        one = self._value(field, idl)
        if one.is_message:
            return lambda m: one.to_idl(getattr(m, name)), lambda m, v: one.fill(
                getattr(m, name), v
            )

        def scalar_to_proto(m: Message, value: Any) -> None:
            proto_value = one.to_proto(value)
            # Only values other than the default are set: setting a default would mark an
            # enclosing message (and a proto3 optional field) present, which IDL cannot say.
            if proto_value:
                setattr(m, name, proto_value)

        return lambda m: one.to_idl(getattr(m, name)), scalar_to_proto

    def _value(self, field: FieldDescriptor, idl: Any) -> _Value:
        """The converter of single values of ``field`` (its elements, when repeated)."""
        if is_message(field):
            inner = self._codec.message(message_type(field))
            return _HeldStruct(inner) if _kind(idl) == _TV_ANY else _Struct(inner)
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self._codec.enum(enum_type(field))
        return _SCALAR

    def _map(self, field: FieldDescriptor, idl: Any) -> tuple[ToIdl, ToProto]:
        name = field.name
        entry_idl = _resolved(idl[1])
        entry_class = entry_idl[1]
        entry = message_type(field)
        key = self._value(entry.fields_by_name["key"], _resolved(entry_idl[5]))
        value = self._value(entry.fields_by_name["value"], _resolved(entry_idl[7]))

        def to_proto(m: Message, entries: Any) -> None:
            target = getattr(m, name)
            for entry in entries:
                if value.is_message:
                    value.fill(target[key.to_proto(entry.key)], entry.value)
                else:
                    target[key.to_proto(entry.key)] = value.to_proto(entry.value)

        return (
            lambda m: [
                entry_class(key.to_idl(k), value.to_idl(v)) for k, v in getattr(m, name).items()
            ],
            to_proto,
        )

    def _oneof(self, source: tuple[str, list[FieldDescriptor]], idl: Any) -> tuple[ToIdl, ToProto]:
        oneof, fields = source
        union_class = idl[1]
        cases = {label: _resolved(case_type) for label, _, case_type in idl[6]}
        by_number = {f.number: (f.name, self._value(f, cases[f.number])) for f in fields}
        by_name = {name: (number, value) for number, (name, value) in by_number.items()}

        def to_idl(m: Message) -> Any:
            which = m.WhichOneof(oneof)
            if which is None:
                return union_class(0, None)
            number, value = by_name[which]
            return union_class(number, value.to_idl(getattr(m, which)))

        def to_proto(m: Message, union: Any) -> None:
            case = by_number.get(union._d)
            if case is None:
                return  # discriminator 0: nothing set
            name, value = case
            if value.is_message:
                child = getattr(m, name)
                child.SetInParent()  # a member set to its default is still the one set
                value.fill(child, union._v)
            else:
                setattr(m, name, value.to_proto(union._v))

        return to_idl, to_proto
