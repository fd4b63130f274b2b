"""The IDL declarations built from a proto index: structs, unions, enums, typedefs, interfaces.

Declarations reference each other by key (``m:powerbus.echo.v1.EchoRequest``,
``seq:m:powerbus.registry.v1.Node``, ``h:powerbus.echo.v1:Bytes`` ...); names are filled in
afterwards by ``_naming``, and the order of declaration by ``_layout``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F

__all__ = [
    "ENUMERATORS",
    "INTERFACE",
    "SCALARS",
    "SCALAR_HELPER",
    "TYPE",
    "TYPE_HELPER",
    "UNION",
    "Decl",
    "DeclKind",
    "Enumerator",
    "Member",
    "Operation",
    "Streaming",
    "TypeRef",
]


# Name-clash priority inside a module (lower claims its name first): see docs/idl-mapping.md.
TYPE, ENUMERATORS, INTERFACE, UNION, TYPE_HELPER, SCALAR_HELPER = 1, 2, 3, 4, 5, 6


class DeclKind(str, Enum):
    STRUCT = "struct"
    UNION = "union"
    ENUM = "enum"
    TYPEDEF = "typedef"
    INTERFACE = "interface"
    EXCEPTION = "exception"


class Streaming(str, Enum):
    UNARY = "unary"
    SERVER = "server"
    CLIENT = "client"
    BIDI = "bidi"


@dataclass(frozen=True)
class TypeRef:
    """Either another declaration (``key``) or an IDL base type (``primitive``)."""

    key: str | None = None
    primitive: str | None = None


@dataclass(kw_only=True)
class Member:
    """A struct member or union case."""

    type: TypeRef
    desired: str
    proto_name: str | None
    """The proto field (or oneof) name; None for a placeholder."""
    label: int | None = None
    """Union case label: the proto field number."""
    holds: str | None = None
    """For a recursion cut to ``any``: key of the struct the any carries."""
    repeated: bool = False
    optional_self: bool = False
    name: str = ""


@dataclass(kw_only=True)
class Enumerator:
    desired: str
    proto_name: str
    number: int
    name: str = ""


@dataclass(kw_only=True)
class Operation:
    desired: str
    proto_name: str
    request: TypeRef
    reply: TypeRef
    streaming: Streaming
    raises: tuple[TypeRef, ...] = ()
    """The domain exceptions (``x:NotFound`` ...) the operation may raise."""
    name: str = ""


@dataclass(kw_only=True)
class Decl:
    """One IDL declaration at module scope."""

    key: str
    kind: DeclKind
    package: str
    category: int
    """Priority when names clash in a module: lower claims its name first."""
    order: tuple[int, ...]
    desired: str = ""
    proto_full: str = ""
    file: str = ""
    """The .proto file that declares it (empty for helper typedefs)."""
    map_entry: bool = False
    members: list[Member] = field(default_factory=list)
    enumerators: list[Enumerator] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    element: TypeRef | None = None
    """Typedefs: the sequence's element type."""
    bound: int | None = None
    suffix: str = ""
    """Typedefs of a declared type: their name is the element's name plus this suffix."""
    self_typedefs: list[str] = field(default_factory=list)
    """Structs holding themselves: typedefs declared between ``struct T;`` and ``T``."""
    name: str = ""

    def refs(self) -> list[str]:
        """Keys this declaration mentions, in order."""
        types: list[TypeRef] = [m.type for m in self.members]
        types += [t for op in self.operations for t in (op.reply, op.request, *op.raises)]
        if self.element is not None:
            types.append(self.element)
        return [t.key for t in types if t.key is not None]


# IDL base type and the name of the helper typedef for a sequence of it.
SCALARS: dict[int, tuple[str, str]] = {
    F.TYPE_DOUBLE: ("double", "DoubleSeq"),
    F.TYPE_FLOAT: ("float", "FloatSeq"),
    F.TYPE_INT64: ("long long", "LongLongSeq"),
    F.TYPE_SINT64: ("long long", "LongLongSeq"),
    F.TYPE_SFIXED64: ("long long", "LongLongSeq"),
    F.TYPE_UINT64: ("unsigned long long", "ULongLongSeq"),
    F.TYPE_FIXED64: ("unsigned long long", "ULongLongSeq"),
    F.TYPE_INT32: ("long", "LongSeq"),
    F.TYPE_SINT32: ("long", "LongSeq"),
    F.TYPE_SFIXED32: ("long", "LongSeq"),
    F.TYPE_UINT32: ("unsigned long", "ULongSeq"),
    F.TYPE_FIXED32: ("unsigned long", "ULongSeq"),
    F.TYPE_BOOL: ("boolean", "BooleanSeq"),
    F.TYPE_STRING: ("string", "StringSeq"),
}
