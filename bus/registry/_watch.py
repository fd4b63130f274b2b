"""One Watch stream: a snapshot of the live matching nodes, then their changes.

A watcher sees the *live* set (UP and DRAINING). A node that goes down — lease lapsed or
deregistered — comes as KIND_REMOVED carrying its last record (health DOWN); registering
again brings it back as KIND_ADDED. A node re-registered with other services enters or
leaves a filtered watch the same way.

Each stream has a bounded queue. The registry never waits for a watcher: when a queue is
full the stream ends with RESOURCE_EXHAUSTED and the client watches again, starting from a
fresh snapshot (cheaper and safer than guessing which changes it can do without).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from powerbus.bus.kernel.errors import ResourceExhausted
from powerbus.bus.kernel.nodes import ChangeKind, DirectoryChange, NodeRecord
from powerbus.bus.registry.directory import Directory
from powerbus.registry.v1 import registry_pb2

__all__ = ["Watch", "WatchFellBehind", "shown"]

Event = registry_pb2.WatchEvent
_KINDS = {
    ChangeKind.ADDED: Event.KIND_ADDED,
    ChangeKind.UPDATED: Event.KIND_UPDATED,
    ChangeKind.REMOVED: Event.KIND_REMOVED,
}


def shown(node: NodeRecord) -> registry_pb2.Node:
    """``node`` as ListNodes and Watch show it to anyone: without its lease id, which only
    its holder learns (in RegisterResponse), so nobody else can heartbeat or deregister it."""
    proto = node.to_proto()
    proto.lease_id = ""
    return proto


class WatchFellBehind(ResourceExhausted):
    """A watcher did not keep up; it must watch again."""

    retriable = True


class Watch:
    """Subscribes at once, so no change falls between the snapshot and the stream."""

    def __init__(
        self,
        directory: Directory,
        services: frozenset[str],
        *,
        backlog: int,
        on_close: Callable[[Watch], None],
    ) -> None:
        self._services = services
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(backlog)
        self._on_close = on_close
        self._fell_behind = False
        self._closed = False
        self.snapshot = [n for n in directory.nodes() if self._matches(n)]
        self.revision = directory.revision
        self._known = {n.node_id for n in self.snapshot}
        self._unsubscribe = directory.add_listener(self._on_change)

    def snapshot_events(self) -> list[Event]:
        """KIND_EXISTING for each node of the snapshot, then KIND_SYNCED."""
        existing = [
            Event(kind=Event.KIND_EXISTING, node=shown(n), revision=self.revision)
            for n in self.snapshot
        ]
        return [*existing, Event(kind=Event.KIND_SYNCED, revision=self.revision)]

    async def next(self) -> Event | None:
        """The next change; None once the registry stops."""
        self._raise_if_behind()
        if self._closed:
            return None
        event = await self._queue.get()
        self._raise_if_behind()
        return event

    def _raise_if_behind(self) -> None:
        if self._fell_behind:
            raise WatchFellBehind(
                f"watch fell more than {self._queue.maxsize} changes behind; watch again"
            )

    def close(self) -> None:
        """End the stream (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        self._on_close(self)
        if not self._queue.full():
            self._queue.put_nowait(None)  # wakes a reader waiting in next()

    def _matches(self, node: NodeRecord) -> bool:
        return node.live and (not self._services or not self._services.isdisjoint(node.services))

    def _on_change(self, change: DirectoryChange) -> None:
        node_id = change.node.node_id
        visible = change.kind is not ChangeKind.REMOVED and self._matches(change.node)
        if visible:
            kind = ChangeKind.UPDATED if node_id in self._known else ChangeKind.ADDED
            self._known.add(node_id)
        elif node_id in self._known:
            kind = ChangeKind.REMOVED
            self._known.discard(node_id)
        else:
            return
        event = Event(kind=_KINDS[kind], node=shown(change.node), revision=change.revision)
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._fell_behind = True
            self._unsubscribe()
