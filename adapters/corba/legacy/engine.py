"""Running a legacy mapping: a proto request in, a legacy CORBA call, a proto reply out.

:meth:`LegacyService.compile` checks a :class:`~.mapping.MappingSpec` against the legacy
IDL's stubs and the proto service (every operation, member, field, code table and
converter it names), then :meth:`LegacyService.call` serves one rpc on a legacy object
reference; :meth:`LegacyService.error_for` turns what the call raised into a powerbus
error with the right gRPC status.

>>> service = LegacyService.compile(spec, stubs=stubs)  # doctest: +SKIP
>>> request = GetCustomerRequest(customer_id="0100000001")  # doctest: +SKIP
>>> service.call(objref, "GetCustomer", request).customer_id  # doctest: +SKIP
'0100000001'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from powerbus.adapters.corba.errors import error_for_status, status_for_corba_exception
from powerbus.adapters.corba.fields import is_repeated
from powerbus.adapters.corba.ior import repository_id
from powerbus.adapters.corba.legacy import values
from powerbus.adapters.corba.legacy.mapping import ArgSpec, MappingSpec, MethodSpec
from powerbus.adapters.corba.legacy.types import (
    Context,
    TypeMapping,
    any_type_code,
    proto_path,
    read_path,
    to_any,
)
from powerbus.adapters.corba.stubs import Stubs, python_name
from powerbus.bus.kernel.errors import ConfigError, PowerbusError

__all__ = ["LegacyMethod", "LegacyService"]

_TV_SEQUENCE, _TV_STRUCT, _TV_ALIAS = 19, 15, 21


@dataclass(frozen=True)
class LegacyMethod:
    """One rpc served by one legacy operation."""

    rpc: MethodDescriptor
    operation: str
    args: tuple[Callable[[Message], Any], ...]
    result: Callable[[Any], Message]

    @property
    def idempotent(self) -> bool:
        """Safe to send again after a lost connection (the proto says so)."""
        level = self.rpc.GetOptions().idempotency_level
        return bool(level != 0)


class LegacyService:
    """A compiled mapping: the proto service it serves and how each rpc is done."""

    def __init__(
        self,
        *,
        spec: MappingSpec,
        service: ServiceDescriptor,
        interface_id: str,
        methods: Mapping[str, LegacyMethod],
        errors: Mapping[str, tuple[grpc.StatusCode, str]],
    ) -> None:
        self.spec = spec
        self.service = service
        self.interface_id = interface_id
        self.methods = dict(methods)
        self._errors = dict(errors)

    @classmethod
    def compile(cls, spec: MappingSpec, *, stubs: Stubs) -> LegacyService:
        """Check ``spec`` against the loaded legacy stubs and the proto descriptors."""
        source = spec.path.name
        try:
            service = descriptor_pool.Default().FindServiceByName(spec.proto_service)
        except KeyError:
            raise ConfigError(
                f"{source}: service.proto: unknown service {spec.proto_service}"
            ) from None
        context = Context(
            stubs=stubs,
            codes=spec.codes,
            types=spec.types,
            zone=values.parse_offset(spec.timezone),
            source=source,
        )
        try:
            interface = stubs.attribute(spec.interface)
        except (AttributeError, ImportError):
            raise context.fail("service.interface", f"the IDL has no {spec.interface}") from None
        methods = {m.rpc: _method(m, service, interface, context) for m in spec.methods}
        errors = {}
        for error in spec.errors:
            code = getattr(grpc.StatusCode, error.status, None)
            if code is None:
                raise context.fail(f"errors.{error.exception}", f"no gRPC status {error.status!r}")
            if stubs.type_code(error.exception) is None:
                raise context.fail(
                    f"errors.{error.exception}", "the legacy IDL declares no such exception"
                )
            errors[repository_id(error.exception)] = (code, error.message)
        for type_name in spec.types:
            context.type(type_name, f"types.{type_name}")  # check the unused ones too
        return cls(
            spec=spec,
            service=service,
            interface_id=repository_id(spec.interface),
            methods=methods,
            errors=errors,
        )

    def call(self, objref: Any, rpc: str, request: Message) -> Message:
        """Do ``rpc`` on the legacy object; CORBA exceptions propagate unchanged."""
        method = self.methods[rpc]
        args = [build(request) for build in method.args]
        result = getattr(objref, python_name(method.operation))(*args)
        return method.result(result)

    def error_for(self, exc: BaseException) -> PowerbusError:
        """The powerbus error (and gRPC status) for what a legacy call raised."""
        if isinstance(exc, PowerbusError):
            return exc
        repo_id = str(getattr(exc, "_NP_RepositoryId", ""))
        if repo_id in self._errors:
            code, template = self._errors[repo_id]
            members = {
                k: v.decode("gbk", errors="replace") if isinstance(v, bytes) else v
                for k, v in vars(exc).items()
                if not k.startswith("_")
            }
            try:
                message = template.format_map(members) if template else repo_id
            except (KeyError, IndexError, ValueError):
                message = f"{template} {members}"
            return error_for_status(code, message)
        code, details = status_for_corba_exception(exc)
        return error_for_status(code, f"{self.spec.interface}: {details}")


def _method(
    spec: MethodSpec, service: ServiceDescriptor, interface: Any, context: Context
) -> LegacyMethod:
    where = f"methods.{spec.rpc}"
    rpc = service.methods_by_name.get(spec.rpc)
    if rpc is None:
        raise context.fail(where, f"{service.full_name} has no rpc {spec.rpc}")
    if rpc.client_streaming or rpc.server_streaming:
        raise context.fail(where, "streaming rpcs cannot be mapped to one legacy operation")
    operation = getattr(interface, f"_d_{python_name(spec.operation)}", None)
    if operation is None:
        raise context.fail(f"{where}.operation", f"the interface has no operation {spec.operation}")
    parameters = operation[0]
    if len(parameters) != len(spec.args):
        raise context.fail(
            f"{where}.args",
            f"{spec.operation} takes {len(parameters)} argument(s), "
            f"the mapping gives {len(spec.args)}",
        )
    args = tuple(
        _arg(arg, rpc.input_type, parameter, context)
        for arg, parameter in zip(spec.args, parameters, strict=True)
    )
    return LegacyMethod(
        rpc=rpc, operation=spec.operation, args=args, result=_result(spec, rpc, context)
    )


def _arg(spec: ArgSpec, request: Any, parameter: Any, context: Context) -> Callable[[Message], Any]:
    if spec.properties:
        return _property_bag(spec, request, parameter, context)
    if spec.value is not None:
        constant = spec.value
        return lambda message: constant
    fields = proto_path(request, spec.proto, where=spec.where, context=context)
    if spec.type:
        nested = context.type(spec.type, spec.where)
        return lambda message: nested.to_legacy(
            read_path(message, fields) or nested.message_class()
        )
    convert = context.converter(spec.convert, fields[-1], f"{spec.where}.convert")

    def build(message: Message) -> Any:
        return convert.to_legacy(read_path(message, fields))

    return build


def _property_bag(
    spec: ArgSpec, request: Any, parameter: Any, context: Context
) -> Callable[[Message], Any]:
    bag = parameter
    while isinstance(bag, tuple) and bag[0] == _TV_ALIAS:
        bag = bag[3]
    element = bag[1] if isinstance(bag, tuple) and bag[0] == _TV_SEQUENCE else None
    while isinstance(element, tuple) and element[0] == _TV_ALIAS:
        element = element[3]
    if not (
        isinstance(element, tuple)
        and element[0] == _TV_STRUCT
        and tuple(element[4::2]) == ("name", "value")
    ):
        raise context.fail(
            spec.where, "the parameter is not a property bag (sequence of {name, value})"
        )
    make = element[1]
    entries = []
    for prop in spec.properties:
        fields = proto_path(request, prop.proto, where=prop.where, context=context)
        convert = context.converter(prop.convert, fields[-1], f"{prop.where}.convert")
        type_code = any_type_code(prop.tc, context, prop.where) if prop.tc else None
        entries.append((prop.name, fields, convert, type_code))

    def build(message: Message) -> list[Any]:
        found = []
        for name, fields, convert, type_code in entries:
            value = read_path(message, fields)
            if value:  # unset conditions are not sent
                found.append(make(name, to_any(convert.to_legacy(value), type_code)))
        return found

    return build


def _result(spec: MethodSpec, rpc: MethodDescriptor, context: Context) -> Callable[[Any], Message]:
    where = spec.result.where
    nested: TypeMapping = context.type(spec.result.type, where)
    reply_class = GetMessageClass(rpc.output_type)
    if not spec.result.field:
        if nested.proto_name != rpc.output_type.full_name:
            raise context.fail(
                where,
                f"type {spec.result.type} makes {nested.proto_name}, {rpc.name} returns "
                f"{rpc.output_type.full_name}: give field = ...",
            )
        return nested.to_proto
    field = rpc.output_type.fields_by_name.get(spec.result.field)
    if (
        field is None
        or field.message_type is None
        or field.message_type.full_name != nested.proto_name
    ):
        raise context.fail(
            where, f"{rpc.output_type.full_name}.{spec.result.field} holds no {nested.proto_name}"
        )
    repeated = is_repeated(field)
    name = field.name

    def result(value: Any) -> Message:
        reply = reply_class()
        if repeated:
            target = getattr(reply, name)
            for item in value:
                nested.fill(target.add(), item)
        else:
            nested.fill(getattr(reply, name), value)
        return reply

    return result
