"""Build the IDL declarations for the powerbus protos and everything they use."""

from __future__ import annotations

from google.protobuf.descriptor_pb2 import FieldDescriptorProto

from powerbus.adapters.corba.idl._index import MessageInfo, ProtoIndex, is_message_field, real_oneof
from powerbus.adapters.corba.idl._model import (
    INTERFACE,
    SCALAR_HELPER,
    SCALARS,
    TYPE,
    TYPE_HELPER,
    UNION,
    Decl,
    DeclKind,
    Enumerator,
    Member,
    Operation,
    Streaming,
    TypeRef,
)
from powerbus.adapters.corba.idl._names import camel
from powerbus.adapters.corba.idl._recursion import RecursionCuts, find_cuts
from powerbus.adapters.corba.idl.exceptions import DOMAIN_EXCEPTIONS, EXCEPTION_MODULE

__all__ = ["PACKAGE_PREFIX", "build_decls", "included_names"]

PACKAGE_PREFIX = "powerbus"

_REPEATED = FieldDescriptorProto.LABEL_REPEATED


def _ours(package: str) -> bool:
    return package == PACKAGE_PREFIX or package.startswith(PACKAGE_PREFIX + ".")


def included_names(index: ProtoIndex) -> set[str]:
    """Full names of every powerbus message, enum and service, plus what they reach."""
    todo = [
        name
        for table in (index.messages, index.enums, index.services)
        for name, info in table.items()
        if _ours(info.package)
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in index.messages:
            fields = index.messages[name].proto.field
            todo += [f.type_name.lstrip(".") for f in fields if f.type_name]
        elif name in index.services:
            for method in index.services[name].proto.method:
                todo += [method.input_type.lstrip("."), method.output_type.lstrip(".")]
    return seen


def build_decls(index: ProtoIndex) -> dict[str, Decl]:
    """Every declaration of the IDL, by key (names not yet allocated)."""
    included = included_names(index)
    cuts = find_cuts(index, (n for n in included if n in index.messages))
    return _Builder(index, cuts).build(included)


class _Builder:
    def __init__(self, index: ProtoIndex, cuts: RecursionCuts) -> None:
        self._index = index
        self._cuts = cuts
        self._decls: dict[str, Decl] = {}

    def build(self, included: set[str]) -> dict[str, Decl]:
        for name, message in self._index.messages.items():
            if name in included:
                self._struct(message)
        for name in self._index.enums:
            if name in included:
                self._enum(name)
        for name, service in self._index.services.items():
            if name in included and _ours(service.package):
                self._interface(name)
        return self._decls

    def _exceptions(self) -> tuple[TypeRef, ...]:
        """The domain exceptions, declared once in module ``powerbus`` on first use."""
        refs = []
        for position, exception in enumerate(DOMAIN_EXCEPTIONS):
            decl = self._add(
                Decl(
                    key=f"x:{exception.name}",
                    kind=DeclKind.EXCEPTION,
                    package=EXCEPTION_MODULE,
                    category=TYPE,
                    order=(-1, position),
                    desired=exception.name,
                    proto_full="",
                )
            )
            if not decl.members:
                decl.members.append(
                    Member(type=TypeRef(primitive="string"), desired="message", proto_name=None)
                )
            refs.append(TypeRef(key=decl.key))
        return tuple(refs)

    def _add(self, decl: Decl) -> Decl:
        return self._decls.setdefault(decl.key, decl)

    # --- messages --------------------------------------------------------------------

    def _struct(self, message: MessageInfo) -> None:
        key = f"m:{message.full}"
        decl = self._add(
            Decl(
                key=key,
                kind=DeclKind.STRUCT,
                package=message.package,
                category=TYPE,
                order=(message.order,),
                desired="_".join(message.path),
                proto_full=message.full,
                file=message.file,
                map_entry=message.is_map_entry,
            )
        )
        unions: set[int] = set()
        for f in message.proto.field:
            if real_oneof(f):
                if f.oneof_index not in unions:
                    unions.add(f.oneof_index)
                    decl.members.append(self._union(message, f.oneof_index))
                continue
            decl.members.append(self._member(message, f, decl))
        if not decl.members:
            # IDL has no empty structs; the placeholder maps to no proto field.
            placeholder = Member(type=TypeRef(primitive="octet"), desired="unused", proto_name=None)
            decl.members.append(placeholder)

    def _union(self, message: MessageInfo, oneof_index: int) -> Member:
        oneof = message.proto.oneof_decl[oneof_index].name
        union = self._add(
            Decl(
                key=f"u:{message.full}.{oneof}",
                kind=DeclKind.UNION,
                package=message.package,
                category=UNION,
                order=(message.order, oneof_index),
                desired="_".join((*message.path, camel(oneof))),
                proto_full=f"{message.full}.{oneof}",
                file=message.file,
            )
        )
        for f in message.proto.field:
            if real_oneof(f) and f.oneof_index == oneof_index:
                member = self._member(message, f, None)
                member.label = f.number
                union.members.append(member)
        return Member(type=TypeRef(key=union.key), desired=oneof, proto_name=oneof)

    def _member(self, message: MessageInfo, f: FieldDescriptorProto, owner: Decl | None) -> Member:
        repeated = f.label == _REPEATED
        member = Member(type=TypeRef(), desired=f.name, proto_name=f.name, repeated=repeated)
        target = f.type_name.lstrip(".")
        where = (message.full, f.number)
        if where in self._cuts.cut:
            member.holds = f"m:{target}"
            any_ = TypeRef(primitive="any")
            if repeated:
                any_ = TypeRef(key=self._scalar_helper(message.package, "AnySeq", any_))
            member.type = any_
        elif where in self._cuts.native and owner is not None:
            key = self._seq_of(f"m:{target}", target, bound=None if repeated else 1)
            if key not in owner.self_typedefs:
                owner.self_typedefs.append(key)
            member.optional_self = not repeated
            member.type = TypeRef(key=key)
        else:
            element = self._single(message.package, f)
            if repeated:
                member.type = TypeRef(key=self._repeated(message.package, f, element))
            else:
                member.type = element
        return member

    def _single(self, package: str, f: FieldDescriptorProto) -> TypeRef:
        if is_message_field(f):
            return TypeRef(key=f"m:{f.type_name.lstrip('.')}")
        if f.type == FieldDescriptorProto.TYPE_ENUM:
            return TypeRef(key=f"e:{f.type_name.lstrip('.')}")
        if f.type == FieldDescriptorProto.TYPE_BYTES:
            octets = TypeRef(primitive="octet")
            return TypeRef(key=self._scalar_helper(package, "Bytes", octets))
        return TypeRef(primitive=SCALARS[f.type][0])

    def _repeated(self, package: str, f: FieldDescriptorProto, element: TypeRef) -> str:
        if element.key is not None and element.key[0] in "me":
            return self._seq_of(element.key, f.type_name.lstrip("."), bound=None)
        name = "BytesSeq" if element.key is not None else SCALARS[f.type][1]
        return self._scalar_helper(package, name, element)

    def _seq_of(self, element_key: str, full: str, *, bound: int | None) -> str:
        """``TSeq`` / ``TOpt``: declared in the module of ``T``, named after it."""
        owner = self._index.messages.get(full) or self._index.enums[full]
        kind = "seq" if bound is None else "opt"
        return self._add(
            Decl(
                key=f"{kind}:{element_key}",
                kind=DeclKind.TYPEDEF,
                package=owner.package,
                category=TYPE_HELPER,
                order=(owner.order, 0 if bound is None else 1),
                element=TypeRef(key=element_key),
                bound=bound,
                suffix="Seq" if bound is None else "Opt",
            )
        ).key

    def _scalar_helper(self, package: str, name: str, element: TypeRef) -> str:
        """``Bytes``, ``StringSeq``, ``AnySeq``...: declared in each module that uses them."""
        order = ("Bytes", "BytesSeq", *sorted({n for _, n in SCALARS.values()}), "AnySeq")
        return self._add(
            Decl(
                key=f"h:{package}:{name}",
                kind=DeclKind.TYPEDEF,
                package=package,
                category=SCALAR_HELPER,
                order=(order.index(name),),
                desired=name,
                element=element,
            )
        ).key

    # --- enums and services ----------------------------------------------------------

    def _enum(self, name: str) -> None:
        enum = self._index.enums[name]
        prefix = "_".join(enum.path[:-1])
        decl = self._add(
            Decl(
                key=f"e:{name}",
                kind=DeclKind.ENUM,
                package=enum.package,
                category=TYPE,
                order=(enum.order,),
                desired="_".join(enum.path),
                proto_full=name,
                file=enum.file,
            )
        )
        numbers: set[int] = set()
        for value in enum.proto.value:
            if value.number in numbers:  # allow_alias: the first name stands for the number
                continue
            numbers.add(value.number)
            desired = f"{prefix}_{value.name}" if prefix else value.name
            decl.enumerators.append(
                Enumerator(desired=desired, proto_name=value.name, number=value.number)
            )

    def _interface(self, name: str) -> None:
        service = self._index.services[name]
        decl = self._add(
            Decl(
                key=f"s:{name}",
                kind=DeclKind.INTERFACE,
                package=service.package,
                category=INTERFACE,
                order=(service.order,),
                desired=service.proto.name,
                proto_full=name,
                file=service.file,
            )
        )
        for method in service.proto.method:
            request = self._message_ref(method.input_type, sequence=method.client_streaming)
            reply = self._message_ref(method.output_type, sequence=method.server_streaming)
            streaming = {
                (False, False): Streaming.UNARY,
                (False, True): Streaming.SERVER,
                (True, False): Streaming.CLIENT,
                (True, True): Streaming.BIDI,
            }[(method.client_streaming, method.server_streaming)]
            decl.operations.append(
                Operation(
                    desired=method.name,
                    proto_name=method.name,
                    request=request,
                    reply=reply,
                    streaming=streaming,
                    raises=self._exceptions(),
                )
            )

    def _message_ref(self, type_name: str, *, sequence: bool) -> TypeRef:
        full = type_name.lstrip(".")
        key = f"m:{full}"
        return TypeRef(key=self._seq_of(key, full, bound=None) if sequence else key)
