"""The directory: one bus instance's in-memory view of the registry.

The router reads it on every call, so reads are dictionary lookups of prepared values;
all the work happens when a change is applied. The view is only changed on the event
loop (by ``Registry``), so readers on the loop never see half a change.

>>> directory = Directory()
>>> (directory.revision, directory.service("powerbus.echo.v1.Echo"), directory.services())
(0, None, [])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from google.protobuf import descriptor_pb2

from powerbus.bus.kernel.nodes import (
    ChangeKind,
    DirectoryChange,
    NodeRecord,
    ServiceEntry,
)
from powerbus.bus.registry._store import Delta, StoredNode

__all__ = ["Directory", "Listener"]

log = logging.getLogger(__name__)

Listener = Callable[[DirectoryChange], None]


class Directory:
    """Every node this bus instance knows of, by id and by service.

    Down nodes stay (with health DOWN) for the registry's ``down_retention``, then go.

    Example, as the router might use it::

        entry = registry.directory.service("powerbus.echo.v1.Echo")
        if entry is None:
            raise Unimplemented(...)
        if not entry.healthy:
            raise NoHealthyNode(...)
    """

    def __init__(self) -> None:
        self.revision = 0
        """The registry revision this view reflects."""
        self._nodes: dict[str, NodeRecord] = {}
        self._revisions: dict[str, int] = {}
        self._files: dict[str, tuple[descriptor_pb2.FileDescriptorProto, ...]] = {}
        self._members: dict[str, set[str]] = {}
        self._services: dict[str, ServiceEntry] = {}
        self._service_names: list[str] = []
        self._descriptors: list[descriptor_pb2.FileDescriptorProto] | None = None
        self._listeners: dict[int, Listener] = {}
        self._next_listener = 0

    def service(self, name: str) -> ServiceEntry | None:
        """The nodes serving ``name``; None if no node in the directory lists it."""
        return self._services.get(name)

    def node(self, node_id: str) -> NodeRecord | None:
        return self._nodes.get(node_id)

    def nodes(self, *, service: str | None = None, include_down: bool = False) -> list[NodeRecord]:
        """Nodes sorted by id, optionally only those serving ``service``."""
        if service is None:
            found: Iterable[NodeRecord] = sorted(self._nodes.values(), key=lambda n: n.node_id)
        else:
            entry = self._services.get(service)
            found = entry.nodes if entry is not None else ()
        return [n for n in found if include_down or n.live]

    def services(self) -> list[str]:
        """Every service some node in the directory lists, sorted."""
        return list(self._service_names)

    def file_descriptors(
        self, *, live_only: bool = False, exclude: str | None = None
    ) -> list[descriptor_pb2.FileDescriptorProto]:
        """Every registered file once, in the order a schema should take them (the first
        definition of a name wins). Do not mutate them.

        Live nodes come before down ones, so a node that left can never shadow what the
        remaining nodes define; and a file is taken from a node that serves a service it
        defines before one that only imports it. Among those, the newest registration
        wins (a rolling upgrade shows the new schema). ``live_only`` and ``exclude`` (a
        node id) give the accepted schema a registration is checked against; in it a
        file keeps only the services its node serves (an import defines nothing).
        """
        if live_only or exclude is not None:
            return self._ordered(live_only=live_only, exclude=exclude, served_only=True)
        if self._descriptors is None:
            self._descriptors = self._ordered(live_only=False, exclude=None, served_only=False)
        return list(self._descriptors)

    def _ordered(
        self, *, live_only: bool, exclude: str | None, served_only: bool
    ) -> list[descriptor_pb2.FileDescriptorProto]:
        ranked: list[tuple[tuple[bool, bool, datetime], descriptor_pb2.FileDescriptorProto]] = []
        for node in self._nodes.values():
            if node.node_id == exclude or (live_only and not node.live):
                continue
            served = set(node.services)
            for file in self._files.get(node.node_id, ()):
                mine = [s for s in file.service if _full(file.package, s.name) in served]
                if served_only and len(mine) != len(file.service):
                    file = _with_services(file, mine)
                ranked.append(((node.live, bool(mine), node.registered_at), file))
        ranked.sort(key=lambda r: r[0], reverse=True)
        chosen: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        for _rank, file in ranked:
            chosen.setdefault(file.name, file)
        return list(chosen.values())

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback`` (on the event loop) with each change; returns an unsubscribe.

        A listener must be quick and must not raise; an exception is logged and ignored.
        """
        token = self._next_listener
        self._next_listener += 1
        self._listeners[token] = callback

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def _apply(self, delta: Delta) -> list[DirectoryChange]:
        """Bring the view to ``delta.revision`` and tell the listeners what changed."""
        changes: list[DirectoryChange] = []
        touched: set[str] = set()
        for stored in delta.nodes:
            if self._revisions.get(stored.record.node_id) == stored.revision:
                continue
            old = self._put(stored)
            touched.update(stored.record.services)
            if old is not None:
                touched.update(old.services)
            kind = ChangeKind.ADDED if old is None else ChangeKind.UPDATED
            changes.append(DirectoryChange(kind, stored.record, stored.revision, old))
        removed = list(delta.removed)
        if delta.full:
            present = {n.record.node_id for n in delta.nodes}
            removed = [(i, delta.revision) for i in self._nodes if i not in present]
        for node_id, revision in removed:
            gone = self._drop(node_id)
            if gone is not None:
                touched.update(gone.services)
                changes.append(DirectoryChange(ChangeKind.REMOVED, gone, revision, gone))
        self._rebuild(touched)
        self.revision = delta.revision
        if changes:
            self._descriptors = None
        changes.sort(key=lambda c: c.revision)
        self._notify(changes)
        return changes

    def _put(self, stored: StoredNode) -> NodeRecord | None:
        record = stored.record
        old = self._nodes.get(record.node_id)
        if old is not None:
            self._leave(old)
        self._nodes[record.node_id] = record
        self._revisions[record.node_id] = stored.revision
        self._files[record.node_id] = stored.files
        for name in record.services:
            self._members.setdefault(name, set()).add(record.node_id)
        return old

    def _drop(self, node_id: str) -> NodeRecord | None:
        old = self._nodes.pop(node_id, None)
        if old is not None:
            self._leave(old)
            del self._revisions[node_id], self._files[node_id]
        return old

    def _leave(self, record: NodeRecord) -> None:
        for name in record.services:
            members = self._members.get(name)
            if members is not None:
                members.discard(record.node_id)

    def _rebuild(self, names: set[str]) -> None:
        for name in names:
            members = self._members.get(name)
            if members:
                nodes = tuple(self._nodes[i] for i in sorted(members))
                self._services[name] = ServiceEntry(name, nodes)
            else:
                self._members.pop(name, None)
                self._services.pop(name, None)
        if names:
            self._service_names = sorted(self._services)

    def _notify(self, changes: list[DirectoryChange]) -> None:
        for change in changes:
            for listener in tuple(self._listeners.values()):
                try:
                    listener(change)
                except Exception:
                    log.exception("directory listener %r failed on %s", listener, change.kind)


def _full(package: str, name: str) -> str:
    return f"{package}.{name}" if package else name


def _with_services(
    file: descriptor_pb2.FileDescriptorProto,
    services: list[descriptor_pb2.ServiceDescriptorProto],
) -> descriptor_pb2.FileDescriptorProto:
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(file)
    del copy.service[:]
    copy.service.extend(services)
    return copy
