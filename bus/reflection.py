"""gRPC server reflection over the schema registry, so it covers every served service.

The stock servicer serves a fixed pool and list; this one reads both on each request, so
a node registered a second ago is already listed. It lists the services that are served
(the bus's own and those some node registered as serving), not every service of every
registered file: a node may register files that declare services it does not serve (the
CORBA gateway registers every proto), and a client would list them only to fail calling.

Both ``grpc.reflection.v1`` (what current grpcurl and grpcui ask first) and
``grpc.reflection.v1alpha`` are served. grpcio-reflection ships only v1alpha; v1 is the
same protocol, message for message and field for field, under another package, so the
one servicer answers both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

from powerbus.bus.schema import SchemaRegistry

__all__ = ["V1_SERVICE", "SchemaReflection", "reflection_v1_file"]

V1_SERVICE = "grpc.reflection.v1.ServerReflection"


class SchemaReflection(ReflectionServicer):  # type: ignore[misc]
    """``grpc.reflection.v1alpha.ServerReflection`` (and v1, see :meth:`v1_handler`)
    backed by a :class:`SchemaRegistry`; ``served()`` names the services to list."""

    def __init__(self, schema: SchemaRegistry, *, served: Callable[[], Iterable[str]]) -> None:
        # The base class's __init__ only stores a fixed pool and list; both are live here.
        self._schema = schema
        self._served = served

    @property
    def _pool(self) -> descriptor_pool.DescriptorPool:
        return self._schema.pool

    @property
    def _service_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self._served()) & set(self._schema.services)))

    def v1_handler(self) -> grpc.GenericRpcHandler:
        """``grpc.reflection.v1.ServerReflection`` over the same servicer."""
        return grpc.method_handlers_generic_handler(
            V1_SERVICE,
            {
                "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                    self.ServerReflectionInfo,
                    request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                    response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                )
            },
        )


def reflection_v1_file() -> descriptor_pb2.FileDescriptorProto:
    """``grpc/reflection/v1/reflection.proto``: v1alpha's file under v1's name, so
    reflection describes the v1 service it lists.

    >>> from google.protobuf import descriptor_pool
    >>> pool = descriptor_pool.DescriptorPool()
    >>> pool.Add(reflection_v1_file()).services_by_name["ServerReflection"].full_name
    'grpc.reflection.v1.ServerReflection'
    """
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = "grpc.reflection.v1"
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, new)
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(old, new)
        method.output_type = method.output_type.replace(old, new)
    return proto
