"""Give every module, declaration, member, enumerator and operation its IDL identifier.

Each IDL scope claims its names in a fixed priority order (see ``Scope``): in a module,
sub-modules first, then messages and enums (declaration order), enumerators, interfaces,
oneof unions, the ``TSeq``/``TOpt`` typedefs and last the scalar helper typedefs.
"""

from __future__ import annotations

from collections import defaultdict

from powerbus.adapters.corba.idl._model import ENUMERATORS, Decl
from powerbus.adapters.corba.idl._names import Scope

__all__ = ["Modules", "assign_names"]

Modules = dict[str, tuple[str, ...]]
"""Proto package -> IDL module path (identifiers, unescaped)."""


def assign_names(decls: dict[str, Decl]) -> Modules:
    """Fill in ``name`` everywhere; return the IDL module path of every package."""
    modules, scopes = _modules({d.package for d in decls.values()})
    by_package: dict[str, list[Decl]] = defaultdict(list)
    for decl in decls.values():
        by_package[decl.package].append(decl)
    for package in sorted(by_package):
        scope = scopes[package]
        ranked = sorted(by_package[package], key=lambda d: (d.category, d.order))
        enumerators_done = False
        for decl in ranked:
            if decl.category > ENUMERATORS and not enumerators_done:
                _claim_enumerators(scope, ranked)
                enumerators_done = True
            decl.name = scope.claim(_desired(decl, decls))
        if not enumerators_done:
            _claim_enumerators(scope, ranked)
    for decl in decls.values():
        _name_inside(decl)
    return modules


def _desired(decl: Decl, decls: dict[str, Decl]) -> str:
    if decl.suffix and decl.element is not None and decl.element.key is not None:
        return decls[decl.element.key].name + decl.suffix
    return decl.desired


def _claim_enumerators(scope: Scope, ranked: list[Decl]) -> None:
    # Enumerators live in the scope enclosing their enum: here, the module.
    for decl in ranked:
        for enumerator in decl.enumerators:
            enumerator.name = scope.claim(enumerator.desired)


def _name_inside(decl: Decl) -> None:
    scope = Scope(own=decl.name)
    for member in decl.members:
        member.name = scope.claim(member.desired)
    for operation in decl.operations:
        operation.name = scope.claim(operation.desired)


def _modules(packages: set[str]) -> tuple[Modules, dict[str, Scope]]:
    paths = {tuple(p.split(".")) if p else () for p in packages}
    paths |= {path[:i] for path in paths for i in range(len(path))}
    idl: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}
    scopes: dict[tuple[str, ...], Scope] = {(): Scope(own=None)}
    for path in sorted(paths - {()}, key=lambda p: (len(p), p)):
        parent = idl[path[:-1]]
        name = scopes[path[:-1]].claim(path[-1])
        idl[path] = (*parent, name)
        scopes[path] = Scope(own=name)
    modules = {".".join(path): idl[path] for path in paths}
    return modules, {".".join(path): scopes[path] for path in paths}
