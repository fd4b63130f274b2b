"""Where recursive messages must be cut so that omniidl accepts the IDL.

omniidl accepts recursion only *inside* a struct's own definition: after ``struct T;``
and ``typedef sequence<T> TSeq;``, ``TSeq`` may be used by ``T`` itself and by nothing
else until ``T`` is complete. So a message that holds itself through a plain singular or
repeated field maps natively (``sequence<T, 1>`` or ``sequence<T>``), while every other
cycle (mutual recursion, recursion through a map entry or a oneof union) is cut: the
field that closes the cycle carries the message in an ``any``.

Which field closes a cycle is decided per strongly connected component: a depth-first
walk from the component's first-declared message, following fields in declaration
order; the fields that lead back to a message still on the walk's stack are the cuts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from powerbus.adapters.corba.idl._index import ProtoIndex, real_oneof

__all__ = ["FieldKey", "RecursionCuts", "find_cuts"]

FieldKey = tuple[str, int]
"""(message full name, field number)."""


@dataclass(frozen=True, kw_only=True)
class RecursionCuts:
    """``native``: fields a message uses to hold itself; ``cut``: fields mapped to ``any``."""

    native: frozenset[FieldKey]
    cut: frozenset[FieldKey]


def find_cuts(index: ProtoIndex, included: Iterable[str]) -> RecursionCuts:
    """Classify the fields of the ``included`` messages that close a recursion cycle."""
    members = sorted(set(included), key=lambda name: index.messages[name].order)
    edges = {
        name: [
            (f.number, target, real_oneof(f))
            for f, target in index.message_fields(index.messages[name])
        ]
        for name in members
    }
    native: set[FieldKey] = set()
    cut: set[FieldKey] = set()
    for component in _components(members, edges):
        inside = set(component)
        head = component[0]
        if len(component) == 1 and all(t != head for _, t, _ in edges[head]):
            continue
        for source, number, target, in_oneof in _back_edges(head, inside, edges):
            if source == target and not in_oneof:
                native.add((source, number))
            else:
                cut.add((source, number))
    return RecursionCuts(native=frozenset(native), cut=frozenset(cut))


_Edges = dict[str, list[tuple[int, str, bool]]]


def _back_edges(head: str, inside: set[str], edges: _Edges) -> list[tuple[str, int, str, bool]]:
    found: list[tuple[str, int, str, bool]] = []
    on_stack: set[str] = set()
    seen: set[str] = set()

    def walk(node: str) -> None:
        seen.add(node)
        on_stack.add(node)
        for number, target, in_oneof in edges[node]:
            if target not in inside:
                continue
            if target in on_stack:
                found.append((node, number, target, in_oneof))
            elif target not in seen:
                walk(target)
        on_stack.discard(node)

    walk(head)
    return found


def _components(nodes: list[str], edges: _Edges) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted in declaration order."""
    position = {name: i for i, name in enumerate(nodes)}
    low: dict[str, int] = {}
    number: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def connect(node: str) -> None:
        number[node] = low[node] = len(number)
        stack.append(node)
        on_stack.add(node)
        for _, target, _ in edges[node]:
            if target not in position:
                continue
            if target not in number:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], number[target])
        if low[node] == number[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            result.append(sorted(component, key=position.__getitem__))

    for name in nodes:
        if name not in number:
            connect(name)
    return result
