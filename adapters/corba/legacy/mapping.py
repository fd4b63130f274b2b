"""A legacy mapping as data: how a legacy IDL interface serves a canonical proto service.

The mapping is a TOML file beside the legacy IDL (``idl/legacy/LegacyCIS.crm.toml``).
This module reads it into frozen records and checks its shape; ``engine`` checks it
against the IDL and the protos and runs it. The tables:

- ``[service]``: ``proto`` (the gRPC service), ``idl`` (file, relative to the mapping),
  ``interface`` (IDL scoped name), ``naming`` (default name in a naming service),
  ``timezone`` of legacy dates (default ``+08:00``);
- ``[codes.NAME]``: a code table, legacy code -> proto value (enum value name, bool,
  number or string); an entry ``_default`` is the value of codes not listed;
- ``[types.NAME]``: ``legacy`` struct <-> ``proto`` message with ``fields``, each
  ``{proto = "a.b", legacy = "MEMBER"}`` plus optionally ``convert`` (see ``values``),
  ``type`` (another type mapping, for struct members and sequences of them),
  ``property`` (the member is a property bag; this names the property), ``tc`` (IDL
  type of a property's value when written), or ``{proto = "a.b", value = CONSTANT}``;
- ``[errors]``: legacy user exception scoped name -> ``{status = "NOT_FOUND", message =
  "customer {CUST_NO} ..."}`` (the message is formatted with the exception's members);
- ``[methods.RPC]``: ``operation``, ``args`` (one per in-parameter, in order: ``{proto =
  "a.b"}``, ``{value = X}``, ``{properties = [{name, proto, convert, tc}]}``, each with an
  optional ``convert`` or ``type``) and ``result`` (``{type = "T"}``: the return value is
  the reply; ``{field = "f", type = "T"}``: it fills one field of the reply).

>>> spec = MappingSpec.load(Path("idl/legacy/LegacyCIS.crm.toml"))  # doctest: +SKIP
>>> spec.proto_service  # doctest: +SKIP
'powerbus.crm.v1.Customers'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from powerbus.bus.kernel.config import read_toml
from powerbus.bus.kernel.errors import ConfigError

__all__ = [
    "ArgSpec",
    "ErrorSpec",
    "FieldSpec",
    "MappingSpec",
    "MethodSpec",
    "PropertySpec",
    "ResultSpec",
    "TypeSpec",
]


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    """One field of a type mapping."""

    where: str
    """Where it is written in the mapping, for error messages."""
    proto: str
    legacy: str = ""
    convert: str = ""
    type: str = ""
    property: str = ""
    tc: str = ""
    value: Any = None
    """A constant proto value (then ``legacy`` is empty)."""


@dataclass(frozen=True, kw_only=True)
class TypeSpec:
    name: str
    legacy: str
    proto: str
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True, kw_only=True)
class PropertySpec:
    where: str
    name: str
    proto: str
    convert: str = ""
    tc: str = ""


@dataclass(frozen=True, kw_only=True)
class ArgSpec:
    where: str
    proto: str = ""
    value: Any = None
    convert: str = ""
    type: str = ""
    properties: tuple[PropertySpec, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ResultSpec:
    where: str
    type: str
    field: str = ""


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    rpc: str
    operation: str
    args: tuple[ArgSpec, ...]
    result: ResultSpec


@dataclass(frozen=True, kw_only=True)
class ErrorSpec:
    exception: str
    status: str
    message: str


@dataclass(frozen=True, kw_only=True)
class MappingSpec:
    """A whole mapping file, shape-checked."""

    path: Path
    proto_service: str
    idl: Path
    interface: str
    naming: str
    timezone: str
    codes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    types: Mapping[str, TypeSpec] = field(default_factory=dict)
    errors: tuple[ErrorSpec, ...] = ()
    methods: tuple[MethodSpec, ...] = ()

    @classmethod
    def load(cls, path: Path) -> MappingSpec:
        """Read and shape-check a mapping file; :class:`ConfigError` names what is wrong."""
        path = Path(path)
        return _Reader(path).mapping(read_toml(path, what="mapping file"))


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path.name}: {where}: {problem}")

    def table(self, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"{where}{key}", "must be a table")
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
        value = data.get(key, "")
        if not isinstance(value, str) or (required and not value):
            raise self.fail(f"{where}.{key}", "must be a non-empty string")
        return value

    def only(self, data: Mapping[str, Any], keys: set[str], where: str) -> None:
        unknown = sorted(set(data) - keys)
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(unknown)}")

    def mapping(self, data: Mapping[str, Any]) -> MappingSpec:
        self.only(data, {"service", "codes", "types", "errors", "methods"}, "top level")
        service = self.table(data, "service", "")
        self.only(service, {"proto", "idl", "interface", "naming", "timezone"}, "service")
        codes = self.table(data, "codes", "")
        for name, table in codes.items():
            if not isinstance(table, dict) or not table:
                raise self.fail(f"codes.{name}", "must be a non-empty table")
        types = {
            name: self.type_spec(name, spec) for name, spec in self.table(data, "types", "").items()
        }
        errors = tuple(
            self.error_spec(name, spec) for name, spec in self.table(data, "errors", "").items()
        )
        methods = tuple(
            self.method_spec(name, spec) for name, spec in self.table(data, "methods", "").items()
        )
        return MappingSpec(
            path=self.path,
            proto_service=self.text(service, "proto", "service", required=True),
            idl=self.path.parent / self.text(service, "idl", "service", required=True),
            interface=self.text(service, "interface", "service", required=True),
            naming=self.text(service, "naming", "service", required=False),
            timezone=self.text(service, "timezone", "service", required=False) or "+08:00",
            codes=codes,
            types=types,
            errors=errors,
            methods=methods,
        )

    def type_spec(self, name: str, spec: Any) -> TypeSpec:
        where = f"types.{name}"
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table")
        self.only(spec, {"legacy", "proto", "fields"}, where)
        fields = spec.get("fields", [])
        if not isinstance(fields, list) or not fields:
            raise self.fail(f"{where}.fields", "must be a non-empty list")
        return TypeSpec(
            name=name,
            legacy=self.text(spec, "legacy", where, required=True),
            proto=self.text(spec, "proto", where, required=True),
            fields=tuple(self.field_spec(f"{where}.fields[{i}]", f) for i, f in enumerate(fields)),
        )

    def field_spec(self, where: str, spec: Any) -> FieldSpec:
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table")
        self.only(spec, {"proto", "legacy", "convert", "type", "property", "tc", "value"}, where)
        constant = spec.get("value")
        legacy = self.text(spec, "legacy", where, required=constant is None)
        if constant is not None and legacy:
            raise self.fail(where, "give either legacy or value, not both")
        return FieldSpec(
            where=where,
            proto=self.text(spec, "proto", where, required=True),
            legacy=legacy,
            convert=self.text(spec, "convert", where, required=False),
            type=self.text(spec, "type", where, required=False),
            property=self.text(spec, "property", where, required=False),
            tc=self.text(spec, "tc", where, required=False),
            value=constant,
        )

    def error_spec(self, name: str, spec: Any) -> ErrorSpec:
        where = f"errors.{name}"
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table")
        self.only(spec, {"status", "message"}, where)
        return ErrorSpec(
            exception=name,
            status=self.text(spec, "status", where, required=True),
            message=self.text(spec, "message", where, required=False),
        )

    def method_spec(self, name: str, spec: Any) -> MethodSpec:
        where = f"methods.{name}"
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table")
        self.only(spec, {"operation", "args", "result"}, where)
        args = spec.get("args", [])
        if not isinstance(args, list):
            raise self.fail(f"{where}.args", "must be a list")
        result = spec.get("result")
        if not isinstance(result, dict):
            raise self.fail(f"{where}.result", "must be a table")
        self.only(result, {"type", "field"}, f"{where}.result")
        return MethodSpec(
            rpc=name,
            operation=self.text(spec, "operation", where, required=True),
            args=tuple(self.arg_spec(f"{where}.args[{i}]", a) for i, a in enumerate(args)),
            result=ResultSpec(
                where=f"{where}.result",
                type=self.text(result, "type", f"{where}.result", required=True),
                field=self.text(result, "field", f"{where}.result", required=False),
            ),
        )

    def arg_spec(self, where: str, spec: Any) -> ArgSpec:
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table")
        self.only(spec, {"proto", "value", "convert", "type", "properties"}, where)
        properties = spec.get("properties", [])
        if not isinstance(properties, list):
            raise self.fail(f"{where}.properties", "must be a list")
        sources = [k for k in ("proto", "value", "properties") if k in spec]
        if len(sources) != 1:
            raise self.fail(where, "give exactly one of proto, value, properties")
        return ArgSpec(
            where=where,
            proto=self.text(spec, "proto", where, required=False),
            value=spec.get("value"),
            convert=self.text(spec, "convert", where, required=False),
            type=self.text(spec, "type", where, required=False),
            properties=tuple(
                self.property_spec(f"{where}.properties[{i}]", p) for i, p in enumerate(properties)
            ),
        )

    def property_spec(self, where: str, spec: Any) -> PropertySpec:
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table")
        self.only(spec, {"name", "proto", "convert", "tc"}, where)
        return PropertySpec(
            where=where,
            name=self.text(spec, "name", where, required=True),
            proto=self.text(spec, "proto", where, required=True),
            convert=self.text(spec, "convert", where, required=False),
            tc=self.text(spec, "tc", where, required=False),
        )
