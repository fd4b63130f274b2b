"""Calling any registered method by name, with JSON in and out, using server reflection.

This is what ``powerbus call`` runs: nothing about the service is compiled in; the bus's
reflection service says what the messages look like.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, json_format, message
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from powerbus.bus.kernel.errors import InvalidArgument, NotFound, error_from_status
from powerbus.bus.transport.grpc_status import from_grpc

__all__ = ["MethodCall", "ReflectionClient", "parse_json_argument"]


@dataclass(frozen=True, slots=True)
class MethodCall:
    """A method found through reflection, with the classes of its messages."""

    method: descriptor.MethodDescriptor
    request_class: type[message.Message]
    reply_class: type[message.Message]

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


class ReflectionClient:
    """Looks up services and methods through ``grpc.reflection.v1alpha``, with a deadline.

    >>> # with grpc.insecure_channel(bus) as ch:
    >>> #     call = ReflectionClient(ch, timeout=5).resolve("powerbus.echo.v1.Echo/Echo")
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float) -> None:
        self._channel = channel
        self._stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        self._timeout = timeout
        self._pool = descriptor_pool.DescriptorPool()
        self._loaded: set[str] = set()

    def list_services(self) -> list[str]:
        (reply,) = self._ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        return sorted(s.name for s in reply.list_services_response.service)

    def resolve(self, target: str) -> MethodCall:
        """``pkg.Service/Method`` (or ``pkg.Service.Method``) → its descriptor and classes."""
        service_name, method_name = _split_target(target)
        services = self.list_services()
        if service_name not in services:
            raise NotFound(
                f"service {service_name} is not registered on the bus; registered: "
                + (", ".join(services) or "none")
            )
        self._load_symbol(service_name)
        service = self._pool.FindServiceByName(service_name)
        method = service.methods_by_name.get(method_name)
        if method is None:
            raise NotFound(
                f"service {service_name} has no method {method_name}; it has: "
                + ", ".join(m.name for m in service.methods)
            )
        return MethodCall(
            method, GetMessageClass(method.input_type), GetMessageClass(method.output_type)
        )

    def invoke(
        self,
        call: MethodCall,
        requests: Sequence[dict[str, Any]],
        *,
        timeout: float,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Iterator[dict[str, Any]]:
        """Send ``requests`` (one, or several for client streams) and yield each reply as JSON."""
        encoded = [_parse(call.request_class, r, i) for i, r in enumerate(requests)]
        m, ch = call.method, self._channel
        ser = call.request_class.SerializeToString
        de = call.reply_class.FromString
        kw: dict[str, Any] = {"timeout": timeout, "metadata": tuple(metadata)}
        if m.client_streaming and m.server_streaming:
            replies: Any = ch.stream_stream(call.path, ser, de)(iter(encoded), **kw)
        elif m.client_streaming:
            replies = [ch.stream_unary(call.path, ser, de)(iter(encoded), **kw)]
        elif len(encoded) != 1:
            raise InvalidArgument("json", f"{m.name} takes one request, got {len(encoded)}")
        elif m.server_streaming:
            replies = ch.unary_stream(call.path, ser, de)(encoded[0], **kw)
        else:
            replies = [ch.unary_unary(call.path, ser, de)(encoded[0], **kw)]
        try:
            for reply in replies:
                yield json_format.MessageToDict(reply, preserving_proto_field_name=True)
        except grpc.RpcError as error:
            raise error_from_status(from_grpc(error.code()), error.details() or "") from None

    def _load_symbol(self, symbol: str) -> None:
        if symbol in self._loaded:
            return
        (reply,) = self._ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in reply.file_descriptor_response.file_descriptor_proto
        ]
        by_name = {f.name: f for f in files}
        for name in by_name:
            self._add_file(name, by_name)
        self._loaded.add(symbol)

    def _add_file(self, name: str, by_name: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
        try:
            self._pool.FindFileByName(name)
            return
        except KeyError:
            pass
        proto = by_name[name]
        for dependency in proto.dependency:
            self._add_file(dependency, by_name)
        self._pool.Add(proto)

    def _ask(self, request: reflection_pb2.ServerReflectionRequest) -> list[Any]:
        try:
            replies = list(self._stub.ServerReflectionInfo(iter([request]), timeout=self._timeout))
        except grpc.RpcError as error:
            raise error_from_status(
                from_grpc(error.code()), f"reflection: {error.details()}"
            ) from None
        for reply in replies:
            if reply.HasField("error_response"):
                raise NotFound(f"reflection: {reply.error_response.error_message}")
        return replies


def _split_target(target: str) -> tuple[str, str]:
    text = target.strip().lstrip("/")
    service, sep, method = text.rpartition("/")
    if not sep:
        service, sep, method = text.rpartition(".")
    if not service or not method:
        raise InvalidArgument(
            "method", f"expected SERVICE/METHOD like powerbus.echo.v1.Echo/Echo, got {target!r}"
        )
    return service, method


def _parse(cls: type[message.Message], value: dict[str, Any], index: int) -> message.Message:
    try:
        return json_format.ParseDict(value, cls())
    except json_format.ParseError as error:
        where = "json" if index == 0 else f"json[{index}]"
        raise InvalidArgument(where, f"not a valid {cls.DESCRIPTOR.full_name}: {error}") from None


def parse_json_argument(text: str) -> list[dict[str, Any]]:
    """``--json`` text → a list of request objects (an object, or an array for streams)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgument("json", f"not valid JSON: {error}") from None
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, dict) for i in items):
        raise InvalidArgument(
            "json", "expected a JSON object, or an array of objects for client streams"
        )
    return items
