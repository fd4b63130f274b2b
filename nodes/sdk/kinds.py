"""The node kinds ``powerbus node KIND`` can run: one table, imported lazily.

>>> load_kind("echo").__name__
'EchoNode'
>>> load_kind("nope")  # doctest: +ELLIPSIS
Traceback (most recent call last):
powerbus.bus.kernel.errors.InvalidArgument: kind: unknown node kind 'nope'; supported: ...echo...
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import itertools
import textwrap
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.sdk.node import Node

__all__ = ["KIND_SETTINGS", "NODE_KINDS", "kind_options", "load_kind"]

# Lazy "module:Class" references: running one kind must not import every other kind's
# dependencies (omniORB, pymodbus, ...).
NODE_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "echo": "powerbus.nodes.echo:EchoNode",
        "corba-gateway": "powerbus.nodes.corba_gateway:CorbaGatewayNode",
        "legacy-cis": "powerbus.nodes.legacy_cis:LegacyCisNode",
        "crm": "powerbus.nodes.crm:CrmNode",
        "billing": "powerbus.nodes.billing.node:BillingNode",
        "payment": "powerbus.nodes.payment:PaymentNode",
        "bank": "powerbus.nodes.bank:BankNode",
        "metering": "powerbus.nodes.metering.node:MeteringNode",
    }
)


# The settings dataclass of each kind that takes options of its own ("module:Class"),
# read for ``powerbus node KIND --help`` without starting (or importing) the node.
KIND_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "corba-gateway": "powerbus.nodes.corba_gateway.config:GatewaySettings",
        "legacy-cis": "powerbus.nodes.legacy_cis.config:LegacySettings",
        "metering": "powerbus.nodes.metering.settings:MeteringSettings",
    }
)


def kind_options(kind: str) -> list[tuple[str, str, str]]:
    """``(--flag, default, help)`` for each option of ``kind``'s own, from its settings
    dataclass: the help is the docstring under each field.

    >>> [flag for flag, _, _ in kind_options("corba-gateway")][:2]
    ['--iiop', '--ior-file']
    >>> kind_options("echo")
    []
    """
    reference = KIND_SETTINGS.get(kind)
    if reference is None:
        return []
    module_name, _, class_name = reference.partition(":")
    settings = getattr(importlib.import_module(module_name), class_name)
    docs = _field_docs(settings)
    options = []
    for field in dataclasses.fields(settings):
        default = "" if field.default in (None, dataclasses.MISSING) else str(field.default)
        if isinstance(field.default, timedelta):
            default = f"{field.default.total_seconds():g}s"
        options.append((f"--{field.name.replace('_', '-')}", default, docs.get(field.name, "")))
    return options


def _field_docs(cls: type) -> dict[str, str]:
    """The string literal under each annotated field of a class (attribute docstrings)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.replace("``", "").split())
    return docs


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
