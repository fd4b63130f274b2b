"""The bus's own events: ``registry.node.status_changed`` from its directory and
``monitoring.alert.raised|cleared`` from its alert book, staged in the outbox of the bus's
own publisher (in the bus's database, relayed to its own forwarder).

Each bus instance announces what its own directory saw, under its own source id, so with
several buses on one database a change is announced once per bus; the payload says which
node and which health, so consumers can tell repeats apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from google.protobuf import message

from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.nodes import ChangeKind, DirectoryChange, NodeHealth
from powerbus.events.v1 import events_pb2
from powerbus.monitoring.alerts import Alert
from powerbus.nodes.sdk.events import Publisher
from powerbus.registry.v1 import registry_pb2

__all__ = ["BusEvents", "alert_event", "status_event"]

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


_SEVERITY = {
    "info": events_pb2.AlertSeverity.ALERT_SEVERITY_INFO,
    "warning": events_pb2.AlertSeverity.ALERT_SEVERITY_WARNING,
    "critical": events_pb2.AlertSeverity.ALERT_SEVERITY_CRITICAL,
}


def alert_event(alert: Alert) -> events_pb2.AlertRaised | events_pb2.AlertCleared:
    """``AlertRaised`` for an alert that started firing, ``AlertCleared`` when it ended."""
    alert_id = f"{alert.rule}/{alert.subject}/{int(alert.raised_at * 1000)}"
    labels = {"subject": alert.subject, "kind": alert.kind.value}
    value = alert.value if alert.value is not None else 0.0
    if alert.cleared_at is None:
        raised = events_pb2.AlertRaised(
            alert_id=alert_id,
            rule=alert.rule,
            severity=_SEVERITY.get(
                alert.severity.value, events_pb2.AlertSeverity.ALERT_SEVERITY_UNSPECIFIED
            ),
            summary=alert.message,
            labels=labels,
            value=value,
        )
        raised.raised_at.FromNanoseconds(int(alert.raised_at * 1e9))
        return raised
    cleared = events_pb2.AlertCleared(
        alert_id=alert_id, rule=alert.rule, labels=labels, value=value
    )
    cleared.raised_at.FromNanoseconds(int(alert.raised_at * 1e9))
    cleared.cleared_at.FromNanoseconds(int(alert.cleared_at * 1e9))
    return cleared


class BusEvents:
    """Stages the bus's own events in the outbox from one owned task (listeners of the
    directory and the alert book must not block)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._queue: asyncio.Queue[message.Message] = asyncio.Queue()
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

    def on_alert(self, alert: Alert) -> None:
        """An alert book listener."""
        self._queue.put_nowait(alert_event(alert))

    async def _stage_forever(self) -> None:
        outbox = self._publisher.outbox
        while True:
            events = [await self._queue.get()]
            while not self._queue.empty():
                events.append(self._queue.get_nowait())

            def stage(batch: list[message.Message] = events) -> None:
                with write_transaction(outbox.engine) as conn:
                    for event in batch:  # mixed payloads: each with its own topic
                        outbox.add(conn, event)

            try:
                await asyncio.to_thread(stage)
            except Exception:  # the database: these changes go unannounced, say so
                log.exception("events: could not stage %d events of the bus", len(events))
                continue
            self._publisher.notify()
