"""gRPC server reflection over the schema registry, so it covers every registered service.

The stock servicer serves a fixed pool and list; this one reads both from the schema
registry on each request, so a node registered a second ago is already listed.
"""

from __future__ import annotations

from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha._async import ReflectionServicer

from powerbus.bus.schema import SchemaRegistry

__all__ = ["SchemaReflection"]


class SchemaReflection(ReflectionServicer):  # type: ignore[misc]
    """``grpc.reflection.v1alpha.ServerReflection`` backed by a :class:`SchemaRegistry`."""

    def __init__(self, schema: SchemaRegistry) -> None:
        # The base class's __init__ only stores a fixed pool and list; both are live here.
        self._schema = schema

    @property
    def _pool(self) -> descriptor_pool.DescriptorPool:
        return self._schema.pool

    @property
    def _service_names(self) -> tuple[str, ...]:
        return self._schema.services
