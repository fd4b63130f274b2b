"""What the bus's CORBA face is made of: the installed protos, their IDL, and its stubs.

The generated protobuf modules of every ``powerbus.<domain>.v<N>`` package are imported,
their descriptors gathered into one set, and the IDL generated from it exactly as
``powerbus idl generate`` writes ``idl/powerbus.idl`` (the drift check keeps the two equal).
Adding a proto service therefore adds its interface here with no code.

>>> schema = CorbaSchema.installed()  # doctest: +SKIP
>>> schema.interfaces()[0].scoped_name  # doctest: +SKIP
'::powerbus::billing::v1::Billing'
"""

from __future__ import annotations

import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from powerbus.adapters.corba.idl import generate_idl, idl_exceptions, idl_names
from powerbus.adapters.corba.stubs import Stubs, load_stubs
from powerbus.bus.kernel.descriptors import descriptor_set_for

__all__ = ["CorbaSchema", "Interface", "Operation", "installed_proto_modules", "installed_services"]

_ROOT_PACKAGE = "powerbus"


@dataclass(frozen=True, slots=True)
class Operation:
    """One IDL operation and the rpc it stands for."""

    name: str
    """The IDL identifier (``Echo_`` for rpc ``Echo``)."""
    method: MethodDescriptor


@dataclass(frozen=True, slots=True)
class Interface:
    """One IDL interface and the gRPC service it stands for."""

    scoped_name: str
    service: ServiceDescriptor
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class CorbaSchema:
    """A descriptor set with its IDL text and the proto -> IDL names."""

    descriptor_set: FileDescriptorSet
    idl: str
    names: dict[str, str]
    exceptions: dict[str, str]
    """Domain exception name (``NotFound``...) -> IDL scoped name."""
    services: tuple[ServiceDescriptor, ...]

    @classmethod
    def installed(cls) -> CorbaSchema:
        """Every powerbus proto package installed with this program."""
        files = {}
        services = []
        for module_name in installed_proto_modules():
            module = importlib.import_module(module_name)
            files[module.DESCRIPTOR.name] = module.DESCRIPTOR
            services += list(module.DESCRIPTOR.services_by_name.values())
        descriptor_set = descriptor_set_for(*files.values())
        return cls(
            descriptor_set=descriptor_set,
            idl=generate_idl(descriptor_set),
            names=idl_names(descriptor_set),
            exceptions=idl_exceptions(descriptor_set),
            services=tuple(sorted(services, key=lambda s: s.full_name)),
        )

    def interfaces(self) -> tuple[Interface, ...]:
        """The IDL interfaces, one per service of a powerbus package."""
        found = []
        for service in self.services:
            scoped = self.names.get(service.full_name)
            if scoped is None:
                continue
            operations = tuple(
                Operation(name=self.names[m.full_name], method=m) for m in service.methods
            )
            found.append(Interface(scoped_name=scoped, service=service, operations=operations))
        return tuple(found)

    def load_stubs(self, *, cache_dir: Path | None = None) -> Stubs:
        """Compile (once) and import the omniORBpy stubs of this IDL."""
        with tempfile.TemporaryDirectory(prefix="powerbus-idl-") as tmp:
            idl = Path(tmp) / "powerbus.idl"
            idl.write_text(self.idl, encoding="utf-8")
            return load_stubs(idl, cache_dir=cache_dir)


def installed_services() -> list[ServiceDescriptor]:
    """Every service of the installed powerbus proto packages, by full name."""
    services = []
    for module_name in installed_proto_modules():
        services += importlib.import_module(module_name).DESCRIPTOR.services_by_name.values()
    return sorted(services, key=lambda s: str(s.full_name))


def installed_proto_modules() -> list[str]:
    """Names of the generated ``powerbus.<domain>.v<N>.<file>_pb2`` modules, sorted."""
    root = importlib.import_module(_ROOT_PACKAGE)
    found: set[str] = set()
    for entry in root.__path__:
        base = Path(entry)
        if not base.is_dir():
            continue
        for path in base.glob("*/v*/*_pb2.py"):
            domain, version = path.parent.parent.name, path.parent.name
            if version[1:].isdigit():
                found.add(f"{_ROOT_PACKAGE}.{domain}.{version}.{path.stem}")
    return sorted(found)
