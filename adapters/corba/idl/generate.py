"""Generate the bus's CORBA IDL from a FileDescriptorSet.

The mapping (docs/idl-mapping.md) in one breath: each proto package is a module, each
message a struct, each enum an enum, each oneof a union switched on the field number,
each service an interface whose operations take the request struct ``in`` and return
the reply struct; streams become sequences; nested types are flattened to
``Outer_Inner``; identifiers that clash with IDL keywords are escaped with ``_`` and
any other clash is resolved by appending ``_``. The output depends on nothing but the
descriptors: no timestamps, no paths, no dict or set ordering.
"""

from __future__ import annotations

from google.protobuf.descriptor_pb2 import FileDescriptorSet

from powerbus.adapters.corba.idl._builder import build_decls
from powerbus.adapters.corba.idl._index import ProtoIndex
from powerbus.adapters.corba.idl._layout import layout
from powerbus.adapters.corba.idl._model import Decl, DeclKind
from powerbus.adapters.corba.idl._naming import Modules, assign_names
from powerbus.adapters.corba.idl._writer import render

__all__ = ["generate_idl", "idl_exceptions", "idl_names"]


def generate_idl(descriptor_set: FileDescriptorSet) -> str:
    """The IDL for every file whose package is ``powerbus`` or under ``powerbus.``.

    Types those files use from other packages (google.protobuf well-known types) are
    emitted too, in their own modules.

    >>> idl = generate_idl(compile_protos(Path("protos")))  # doctest: +SKIP
    >>> "interface Echo {" in idl  # doctest: +SKIP
    True
    """
    index = ProtoIndex.build(descriptor_set)
    decls, modules = _named(index)
    sources = {d.file for d in decls.values() if d.file}
    return render(decls, layout(decls), modules, sources)


def idl_names(descriptor_set: FileDescriptorSet) -> dict[str, str]:
    """Proto names -> IDL names, for bridges that convert between the two.

    Keys are proto full names: messages, enums, services (valued with the IDL scoped
    name, ``::powerbus::echo::v1::Echo``), and their fields, oneofs, enum values and
    methods (``powerbus.echo.v1.Echo.Echo`` -> ``Echo_``; valued with the identifier).
    Identifiers are given unescaped, as omniidl's stubs and repository ids spell them.

    >>> idl_names(fds)["powerbus.echo.v1.Echo.Echo"]  # doctest: +SKIP
    'Echo_'
    """
    index = ProtoIndex.build(descriptor_set)
    decls, modules = _named(index)
    names: dict[str, str] = {}
    for decl in decls.values():
        if not decl.proto_full:
            continue
        owner = decl.proto_full
        if decl.kind is DeclKind.UNION:
            owner = decl.proto_full.rsplit(".", 1)[0]  # its cases are fields of the message
        else:
            names[decl.proto_full] = "::" + "::".join((*modules[decl.package], decl.name))
        for member in decl.members:
            if member.proto_name is not None:
                names[f"{owner}.{member.proto_name}"] = member.name
        for enumerator in decl.enumerators:
            names[f"{decl.proto_full}.{enumerator.proto_name}"] = enumerator.name
        for operation in decl.operations:
            names[f"{decl.proto_full}.{operation.proto_name}"] = operation.name
    return dict(sorted(names.items()))


def idl_exceptions(descriptor_set: FileDescriptorSet) -> dict[str, str]:
    """The domain exceptions the IDL declares: their name in
    :data:`~powerbus.adapters.corba.idl.exceptions.DOMAIN_EXCEPTIONS` -> IDL scoped name. Empty when
    the descriptors hold no powerbus service (nothing raises them then).

    >>> idl_exceptions(fds)["NotFound"]  # doctest: +SKIP
    '::powerbus::NotFound'
    """
    decls, modules = _named(ProtoIndex.build(descriptor_set))
    return {
        decl.desired: "::" + "::".join((*modules[decl.package], decl.name))
        for decl in decls.values()
        if decl.kind is DeclKind.EXCEPTION
    }


def _named(index: ProtoIndex) -> tuple[dict[str, Decl], Modules]:
    decls = build_decls(index)
    modules = assign_names(decls)
    return decls, modules
