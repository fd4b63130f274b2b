"""The node kinds ``powerbus node KIND`` can run: one table, imported lazily.

>>> load_kind("echo").__name__
'EchoNode'
>>> load_kind("nope")  # doctest: +ELLIPSIS
Traceback (most recent call last):
powerbus.bus.kernel.errors.InvalidArgument: kind: unknown node kind 'nope'; supported: ...echo...
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.sdk.node import Node

__all__ = ["NODE_KINDS", "load_kind"]

# Lazy "module:Class" references: running one kind must not import every other kind's
# dependencies (omniORB, pymodbus, ...).
NODE_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "echo": "powerbus.nodes.echo:EchoNode",
        "corba-gateway": "powerbus.nodes.corba_gateway:CorbaGatewayNode",
        "legacy-cis": "powerbus.nodes.legacy_cis:LegacyCisNode",
        "crm": "powerbus.nodes.crm:CrmNode",
        "payment": "powerbus.nodes.payment:PaymentNode",
        "bank": "powerbus.nodes.bank:BankNode",
    }
)


def load_kind(kind: str, *, kinds: Mapping[str, str] = NODE_KINDS) -> type[Node]:
    """The node class of ``kind``; :class:`InvalidArgument` listing the kinds otherwise."""
    try:
        reference = kinds[kind]
    except KeyError:
        supported = ", ".join(sorted(kinds))
        raise InvalidArgument(
            "kind", f"unknown node kind {kind!r}; supported: {supported}"
        ) from None
    module_name, _, class_name = reference.partition(":")
    node_class = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(node_class, type) and issubclass(node_class, Node)):
        raise TypeError(f"{reference} is not a Node subclass")
    if node_class.kind != kind:
        raise TypeError(f"{reference}.kind is {node_class.kind!r}, listed as {kind!r}")
    return node_class
