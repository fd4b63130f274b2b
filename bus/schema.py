"""The schema registry: every registered node's descriptors, merged into one pool.

The router asks it what kind of call a method is (unary or which streaming shape) and
whether it is safe to retry; server reflection serves its pool, so a generic client such
as grpcurl sees every service registered on the bus.

:class:`SchemaCheck` keeps that pool sound: a registration whose descriptors redefine a
bus service, define a name another file already defines, or change an accepted
declaration incompatibly (as ``powerbus idl check`` judges it) is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf import descriptor_pb2, descriptor_pool

from powerbus.adapters.corba.idl._index import ProtoIndex
from powerbus.adapters.corba.idl.compat import proto_changes
from powerbus.bus.kernel.descriptors import MethodInfo, idempotency_of, method_kind
from powerbus.bus.kernel.errors import InvalidArgument, PermissionDenied
from powerbus.bus.registry._validation import Registration

__all__ = ["SchemaCheck", "SchemaRegistry"]

Files = Sequence[descriptor_pb2.FileDescriptorProto]
# Whole declarations missing from one side: the other side simply does not use them.
_ABSENT = frozenset({"MESSAGE_NO_DELETE", "ENUM_NO_DELETE", "SERVICE_NO_DELETE"})


class SchemaRegistry:
    """Descriptors of the registered services, rebuilt when the registered files change.

    >>> from powerbus.bus.kernel.descriptors import descriptor_set_for
    >>> from powerbus.echo.v1 import echo_pb2
    >>> schema = SchemaRegistry()
    >>> schema.rebuild(descriptor_set_for(echo_pb2.DESCRIPTOR).file)
    True
    >>> schema.method("/powerbus.echo.v1.Echo/Chat").kind
    <MethodKind.BIDI_STREAM: 'bidi_stream'>
    """

    def __init__(self) -> None:
        self._pool = descriptor_pool.DescriptorPool()
        self._fingerprint: tuple[tuple[str, bytes], ...] = ()
        self._methods: dict[str, MethodInfo] = {}
        self._services: tuple[str, ...] = ()

    @property
    def pool(self) -> descriptor_pool.DescriptorPool:
        return self._pool

    @property
    def services(self) -> tuple[str, ...]:
        """Full names of every service described, sorted."""
        return self._services

    def method(self, path: str) -> MethodInfo | None:
        return self._methods.get(path)

    def has_service(self, name: str) -> bool:
        return name in self._services

    def rebuild(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> bool:
        """Replace the pool with ``files``; returns whether anything changed.

        A descriptor pool cannot forget a file, so a change builds a new pool. Files are
        taken in the order given and the first file of a name wins, so give the bus's own
        files first, then the directory's (live nodes first). A file that fails to build
        (it defines a name an earlier file defines) is left out rather than failing the rest.
        """
        by_name: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        for file in files:
            by_name.setdefault(file.name, file)
        fingerprint = tuple(
            (n, f.SerializeToString(deterministic=True)) for n, f in by_name.items()
        )
        if fingerprint == self._fingerprint:
            return False
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()
        for name in by_name:
            _add_with_dependencies(pool, name, by_name, added, set())
        methods: dict[str, MethodInfo] = {}
        services: list[str] = []
        for name in sorted(added):
            for service in pool.FindFileByName(name).services_by_name.values():
                services.append(service.full_name)
                for m in service.methods:
                    path = f"/{service.full_name}/{m.name}"
                    methods[path] = MethodInfo(
                        path=path,
                        service=service.full_name,
                        kind=method_kind(m.client_streaming, m.server_streaming),
                        idempotency=idempotency_of(m.GetOptions()),
                    )
        self._pool, self._fingerprint = pool, fingerprint
        self._methods, self._services = methods, tuple(sorted(services))
        return True


class SchemaCheck:
    """Judges a registration's descriptors against the accepted schema.

    The accepted schema is the bus's own files plus those of the other live nodes, in
    which a file keeps only the services its node serves (``Directory.file_descriptors``
    with ``live_only``): so it comes from the remaining nodes, and a node that left
    leaves nothing behind. Refused, naming the declaration:

    - serving a service of the bus itself (``services[i]``, PERMISSION_DENIED);
    - defining a name (message, enum, service) that another file already defines;
    - a breaking change to an accepted declaration: for a service the node serves, any
      breaking finding of ``powerbus idl check`` (an rpc removed, its streaming or types
      changed, a field renumbered or retyped); for what it only imports, the same except
      that it may lack what is newer (an older copy of an import is fine).

    >>> from powerbus.bus.kernel.descriptors import descriptor_set_for
    >>> from powerbus.echo.v1 import echo_pb2
    >>> echo = list(descriptor_set_for(echo_pb2.DESCRIPTOR).file)
    >>> SchemaCheck([], ()).check(echo, ("powerbus.echo.v1.Echo",), accepted=echo)
    """

    def __init__(self, reserved_files: Files, reserved_services: Iterable[str]) -> None:
        self._reserved_files = list(reserved_files)
        self._reserved_names = {f.name for f in self._reserved_files}
        self._reserved_services = frozenset(reserved_services)

    def guard(self, reg: Registration, accepted: Files) -> None:
        """:meth:`check` for the registry (``Registry.schema_guard``)."""
        self.check(reg.files, reg.services, accepted=accepted)

    def check(self, offered: Files, services: Sequence[str], *, accepted: Files) -> None:
        """Raise :class:`PermissionDenied` or :class:`InvalidArgument` naming the conflict."""
        for index, name in enumerate(services):
            if name in self._reserved_services:
                raise PermissionDenied(
                    f"services[{index}]: {name} is a service of the bus itself; "
                    "no node may serve or redefine it"
                )
        if not offered:
            return
        base = [*self._reserved_files, *(f for f in accepted if f.name not in self._reserved_names)]
        old = ProtoIndex.build(descriptor_pb2.FileDescriptorSet(file=base))
        new = ProtoIndex.build(descriptor_pb2.FileDescriptorSet(file=offered))
        self._same_files(old, new)
        served = set(services)
        owned = {
            f.name for f in offered if any(f"{f.package}.{s.name}" in served for s in f.service)
        }
        for finding in proto_changes(
            descriptor_pb2.FileDescriptorSet(file=base),
            descriptor_pb2.FileDescriptorSet(file=offered),
        ):
            if not finding.breaking or finding.rule in _ABSENT:
                continue
            parent = finding.subject.rpartition(".")[0]
            file = _file_of(new, parent)
            if file is None or (finding.rule.endswith("_NO_DELETE") and file not in owned):
                continue
            raise InvalidArgument(
                "file_descriptor_set",
                f"{file} conflicts with the accepted schema: {finding.message} "
                f"({finding.rule}, {finding.subject})",
            )

    def _same_files(self, old: ProtoIndex, new: ProtoIndex) -> None:
        for kind, offered, accepted in (
            ("message", new.messages, old.messages),
            ("enum", new.enums, old.enums),
            ("service", new.services, old.services),
        ):
            for name, info in offered.items():
                was = accepted.get(name)
                if was is not None and was.file != info.file:
                    whose = "the bus's own " if was.file in self._reserved_names else ""
                    raise InvalidArgument(
                        "file_descriptor_set",
                        f"{info.file} defines {kind} {name}, which {whose}file {was.file} "
                        "already defines",
                    )


def _file_of(index: ProtoIndex, name: str) -> str | None:
    for table in (index.messages, index.enums, index.services):
        info = table.get(name)
        if info is not None:
            return str(info.file)
    return None


def _add_with_dependencies(
    pool: descriptor_pool.DescriptorPool,
    name: str,
    by_name: dict[str, descriptor_pb2.FileDescriptorProto],
    added: set[str],
    visiting: set[str],
) -> bool:
    if name in added:
        return True
    proto = by_name.get(name)
    if proto is None or name in visiting:
        return False
    visiting.add(name)
    if not all(_add_with_dependencies(pool, d, by_name, added, visiting) for d in proto.dependency):
        return False
    try:
        pool.Add(proto)
        pool.FindFileByName(name)
    except (TypeError, KeyError, ValueError):
        return False
    added.add(name)
    return True
