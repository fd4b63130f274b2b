"""Service descriptors of generated gRPC code, and the descriptor sets nodes register.

The grpc Python plugin writes ``<file>_pb2_grpc.py`` beside ``<file>_pb2.py`` with, for each
service ``S``, a ``SStub`` class, an ``SServicer`` base class and an
``add_SServicer_to_server`` function. This module finds the service behind those names,
so a node declares what it serves and calls by naming the generated classes only.

>>> from powerbus.echo.v1 import echo_pb2_grpc
>>> service_of_servicer(echo_pb2_grpc.EchoServicer).full_name
'powerbus.echo.v1.Echo'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from powerbus.bus.kernel.descriptors import descriptor_set_for

__all__ = [
    "ServedService",
    "file_descriptor_set",
    "is_generated_servicer",
    "service_of_servicer",
    "service_of_stub",
]

_GRPC_SUFFIX = "_pb2_grpc"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedService:
    """One gRPC service a node serves: its descriptor and how to add it to a server."""

    descriptor: ServiceDescriptor
    servicer_base: type
    add_to_server: Callable[[Any, grpc.aio.Server], None]

    @property
    def name(self) -> str:
        """Full service name, e.g. ``powerbus.echo.v1.Echo``."""
        return str(self.descriptor.full_name)

    @classmethod
    def of(cls, servicer_base: type) -> ServedService:
        """Describe the service of a generated ``...Servicer`` base class."""
        module = sys.modules[servicer_base.__module__]
        add = getattr(module, f"add_{servicer_base.__name__}_to_server")
        return cls(
            descriptor=service_of_servicer(servicer_base),
            servicer_base=servicer_base,
            add_to_server=add,
        )


def is_generated_servicer(klass: type) -> bool:
    """True for a ``FooServicer`` class written by the grpc Python plugin."""
    module = sys.modules.get(klass.__module__)
    return (
        module is not None
        and klass.__module__.endswith(_GRPC_SUFFIX)
        and klass.__name__.endswith("Servicer")
        and callable(getattr(module, f"add_{klass.__name__}_to_server", None))
    )


def service_of_servicer(servicer_base: type) -> ServiceDescriptor:
    """The service a generated ``FooServicer`` base class serves."""
    return _service(servicer_base, "Servicer")


def service_of_stub(stub: type) -> ServiceDescriptor:
    """The service a generated ``FooStub`` class calls."""
    return _service(stub, "Stub")


def _service(klass: type, suffix: str) -> ServiceDescriptor:
    module_name, name = klass.__module__, klass.__name__
    if not (module_name.endswith(_GRPC_SUFFIX) and name.endswith(suffix)):
        raise TypeError(f"{module_name}.{name} is not a generated gRPC {suffix.lower()} class")
    pb2 = importlib.import_module(module_name.removesuffix("_grpc"))
    service_name = name.removesuffix(suffix)
    try:
        return pb2.DESCRIPTOR.services_by_name[service_name]  # type: ignore[no-any-return]
    except KeyError:
        raise TypeError(f"{pb2.__name__} declares no service {service_name!r}") from None


def file_descriptor_set(services: Iterable[ServiceDescriptor]) -> bytes:
    """A serialized ``FileDescriptorSet`` of the files declaring ``services`` and every file
    they import, transitively, dependencies before dependants (as protoc writes them).

    >>> from powerbus.echo.v1 import echo_pb2
    >>> from google.protobuf import descriptor_pb2
    >>> data = file_descriptor_set([echo_pb2.DESCRIPTOR.services_by_name["Echo"]])
    >>> fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    >>> [f.name for f in fds.file]
    ['google/protobuf/duration.proto', 'powerbus/echo/v1/echo.proto']
    """
    files = {s.file.name: s.file for s in services}
    return descriptor_set_for(*files.values()).SerializeToString()
