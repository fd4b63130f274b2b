"""The schema registry: every registered node's descriptors, merged into one pool.

The router asks it what kind of call a method is (unary or which streaming shape) and
whether it is safe to retry; server reflection serves its pool, so a generic client such
as grpcurl sees every service registered on the bus.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2, descriptor_pool

from powerbus.bus.kernel.descriptors import MethodInfo, idempotency_of, method_kind

__all__ = ["SchemaRegistry"]


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
        self._fingerprint: frozenset[tuple[str, bytes]] = frozenset()
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

        A descriptor pool cannot forget a file, so a change builds a new pool. Files that
        fail to build (the registry validated them, so only a conflict between two nodes'
        versions of one file can do that) are left out rather than failing the rest.
        """
        by_name = {f.name: f for f in files}
        fingerprint = frozenset(
            (n, f.SerializeToString(deterministic=True)) for n, f in by_name.items()
        )
        if fingerprint == self._fingerprint:
            return False
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()
        for name in sorted(by_name):
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
