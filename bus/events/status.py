"""``registry.node.status_changed``: the bus announces node status changes through its
own publisher (outbox in the bus's database, relayed to its own forwarder).

Each bus instance announces what its own directory saw, under its own source id, so with
several buses on one database a change is announced once per bus; the payload says which
node and which health, so consumers can tell repeats apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.nodes import ChangeKind, DirectoryChange, NodeHealth
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events import Publisher
from powerbus.registry.v1 import registry_pb2

__all__ = ["StatusEvents", "status_event"]

log = logging.getLogger(__name__)

_UNSPECIFIED = registry_pb2.NodeHealth.NODE_HEALTH_UNSPECIFIED


def _health(health: NodeHealth | None) -> registry_pb2.NodeHealth.ValueType:
    if health is None:
        return _UNSPECIFIED
    return registry_pb2.NodeHealth.Value(f"NODE_HEALTH_{health.name}")


def status_event(change: DirectoryChange) -> events_pb2.NodeStatusChanged | None:
    """The event of a directory change, or None when the node's status did not change
    (a heartbeat's load, a weight).

    >>> # status_event(DirectoryChange(ChangeKind.ADDED, node, 1)).reason  -> 'registered'
    """
    node, previous = change.node, change.previous
    if change.kind is ChangeKind.ADDED:
        reason = "registered"
    elif change.kind is ChangeKind.REMOVED:
        reason = "purged"
    elif previous is None or previous.health is node.health:
        return None
    elif node.health is NodeHealth.DOWN:
        reason = "down"
    elif node.health is NodeHealth.DRAINING:
        reason = "draining"
    else:
        reason = "back up"
    return events_pb2.NodeStatusChanged(
        node_id=node.node_id,
        kind=node.kind,
        address=node.address,
        previous_health=_health(previous.health if previous else None),
        health=_health(node.health),
        reason=reason,
    )


class StatusEvents:
    """Listens to the directory and stages each status change in the outbox, from one
    owned task (the listener itself must not block the directory)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._queue: asyncio.Queue[events_pb2.NodeStatusChanged] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._stage_forever(), name="powerbus-status-events")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def on_change(self, change: DirectoryChange) -> None:
        """A directory listener."""
        event = status_event(change)
        if event is not None:
            self._queue.put_nowait(event)

    async def _stage_forever(self) -> None:
        outbox = self._publisher.outbox
        while True:
            events = [await self._queue.get()]
            while not self._queue.empty():
                events.append(self._queue.get_nowait())

            def stage(batch: list[events_pb2.NodeStatusChanged] = events) -> None:
                with write_transaction(outbox.engine) as conn:
                    outbox.add_many(conn, batch)

            try:
                await asyncio.to_thread(stage)
            except Exception:  # the database: these changes go unannounced, say so
                log.exception("events: could not stage %d node status changes", len(events))
                continue
            self._publisher.notify()
