"""Declare before use: the order in which the IDL declares everything.

Packages come in dependency order (a package before those that use it; ties and cycles
broken by name), and within a package declarations keep proto declaration order with
interfaces last, each preceded by whatever it uses that is not declared yet. A struct
that holds itself is announced by ``struct T;`` and its ``TSeq``/``TOpt`` typedefs right
before its definition.
"""

from __future__ import annotations

from dataclasses import dataclass

from powerbus.adapters.corba.idl._builder import PACKAGE_PREFIX
from powerbus.adapters.corba.idl._model import INTERFACE, TYPE, TYPE_HELPER, Decl, DeclKind

__all__ = ["Item", "layout"]

_ROOTS = (TYPE, INTERFACE, TYPE_HELPER)


@dataclass(frozen=True)
class Item:
    """``key`` declared in full, or only forward-declared when ``forward``."""

    key: str
    forward: bool = False


def layout(decls: dict[str, Decl]) -> list[Item]:
    """Every declaration once, each after everything it uses."""
    items: list[Item] = []
    done: set[str] = set()
    active: set[str] = set()

    def deps(decl: Decl) -> list[str]:
        return [k for k in decl.refs() if k not in decl.self_typedefs and k != decl.key]

    def visit(key: str) -> None:
        if key in done:
            return
        if key in active:  # _recursion cut every other cycle
            raise AssertionError(f"dependency cycle through {key}")
        active.add(key)
        decl = decls[key]
        for dep in deps(decl):
            visit(dep)
        if key not in done:
            if decl.self_typedefs:
                items.append(Item(key, forward=True))
                items.extend(Item(t) for t in decl.self_typedefs)
                done.update(decl.self_typedefs)
            items.append(Item(key))
            done.add(key)
        active.discard(key)

    for package in _package_order(decls):
        # Unions and scalar helpers need no place of their own: they come before their
        # first user. A TSeq typedef is placed right after T.
        roots = [d for d in decls.values() if d.package == package and d.category in _ROOTS]
        roots.sort(key=lambda d: (d.kind is DeclKind.INTERFACE, d.order))
        for decl in roots:
            visit(decl.key)
    return items


def _package_order(decls: dict[str, Decl]) -> list[str]:
    uses: dict[str, set[str]] = {d.package: set() for d in decls.values()}
    for decl in decls.values():
        for key in decl.refs():
            if decls[key].package != decl.package:
                uses[decl.package].add(decls[key].package)
    order: list[str] = []
    state: dict[str, bool] = {}

    def visit(package: str) -> None:
        if package in state:
            return
        state[package] = False
        for used in sorted(uses[package]):
            visit(used)
        state[package] = True
        order.append(package)

    # Packages the powerbus ones import (google.protobuf ...) first, so that the powerbus
    # module is opened once unless its own packages use each other in a cycle.
    for package in sorted(uses, key=lambda p: (p.split(".")[0] == PACKAGE_PREFIX, p)):
        visit(package)
    return order
