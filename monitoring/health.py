"""Node health as operators see it: the registry's view, sharpened by what traffic shows.

The registry says up, draining or down. Monitoring tells apart a node that *left*
(deregistered on a clean stop) from one whose lease *lapsed* (crashed, hung, cut off),
and marks a node *unreachable* when every recent call sent to it failed UNAVAILABLE —
which after a crash is seconds before its lease lapses. It also counts health changes
per node, for the flapping alert.

>>> log = HealthLog()
>>> log.health_of(_node("n1", NodeHealth.DOWN), unreachable=False)
<OperatorHealth.DOWN: 'down'>
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum

from powerbus.bus.kernel.nodes import ChangeKind, DirectoryChange, NodeHealth, NodeRecord

__all__ = ["HealthLog", "OperatorHealth"]

_KEEP_CHANGES_S = 3600.0


class OperatorHealth(str, Enum):
    """A node's health on the dashboard; ``ok`` says whether it takes calls."""

    UP = "up"
    DRAINING = "draining"
    UNREACHABLE = "unreachable"
    """Registered, but every recent call to it failed UNAVAILABLE."""
    DOWN = "down"
    """Lease lapsed (or down when this bus started)."""
    LEFT = "left"
    """Deregistered itself: a clean stop."""

    @property
    def ok(self) -> bool:
        return self is OperatorHealth.UP


class HealthLog:
    """Listens to directory changes: why nodes went down, and when health changed."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._left: set[str] = set()
        self._changes: dict[str, deque[float]] = {}

    def on_change(self, change: DirectoryChange) -> None:
        """A directory listener (:class:`~powerbus.bus.kernel.nodes.DirectoryView`)."""
        node, previous = change.node, change.previous
        node_id = node.node_id
        if change.kind is ChangeKind.REMOVED:
            self._left.discard(node_id)
            return
        was = previous.health if previous is not None else None
        if node.health is NodeHealth.DOWN and was is not NodeHealth.DOWN:
            # The sweeper marks a node down only once its lease is past; a node that
            # deregistered still held a lease that had time to run.
            if node.lease_expires_at > datetime.now(timezone.utc):
                self._left.add(node_id)
            else:
                self._left.discard(node_id)
        elif node.health is not NodeHealth.DOWN:
            self._left.discard(node_id)
        changed_health = was is not None and was is not node.health
        registered_again = previous is not None and previous.lease_id != node.lease_id
        if changed_health or registered_again:
            self._changes.setdefault(node_id, deque()).append(self._clock())

    def mark_left(self, node_id: str) -> None:
        """Take ``node_id``, found down, to have left cleanly."""
        self._left.add(node_id)

    def health_of(self, node: NodeRecord, *, unreachable: bool) -> OperatorHealth:
        if node.health is NodeHealth.DOWN:
            if node.down_since is not None:  # the registry says when, so which
                return OperatorHealth.LEFT if node.left else OperatorHealth.DOWN
            return OperatorHealth.LEFT if node.node_id in self._left else OperatorHealth.DOWN
        if node.health is NodeHealth.DRAINING:
            return OperatorHealth.DRAINING
        return OperatorHealth.UNREACHABLE if unreachable else OperatorHealth.UP

    def changes_within(self, node_id: str, seconds: float) -> int:
        """How many times ``node_id`` changed health (or re-registered) within ``seconds``."""
        changes = self._changes.get(node_id)
        if not changes:
            return 0
        now = self._clock()
        while changes and now - changes[0] > _KEEP_CHANGES_S:
            changes.popleft()
        return sum(1 for at in changes if now - at <= seconds)


def _node(node_id: str, health: NodeHealth) -> NodeRecord:
    """A node record for examples and tests."""
    from powerbus.bus.kernel.nodes import EPOCH

    return NodeRecord(
        node_id=node_id,
        kind="echo",
        address="127.0.0.1:1",
        services=(),
        health=health,
        registered_at=EPOCH,
        last_heartbeat_at=EPOCH,
        lease_expires_at=EPOCH,
        lease_id="l",
    )
