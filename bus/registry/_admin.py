"""What operators do to nodes by hand: take one out of rotation and put it back, change
its weight, mark it down, purge the down ones. Each is a change like a registration (a
new revision), so every bus instance and every Watch sees it within a sweep.

A node taken out of rotation stays registered and heartbeating (health ``draining``): it
finishes the calls it has and gets no new ones until it is enabled again or registers
anew. A node marked down that is still running finds its lease gone at its next
heartbeat and registers again, as after any lapse.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.errors import InvalidArgument, NotFound
from powerbus.bus.kernel.nodes import NodeHealth
from powerbus.bus.registry._store import _Revision
from powerbus.bus.registry._tables import nodes

__all__ = ["mark_down", "purge_down", "set_rotation", "set_weight"]

_LIVE = (NodeHealth.UP.value, NodeHealth.DRAINING.value)
_MAX_WEIGHT = 10_000


def set_rotation(engine: Engine, node_id: str, *, in_rotation: bool, now: datetime) -> bool:
    """Put a live node in rotation (up) or take it out (draining); whether it changed."""
    health = NodeHealth.UP if in_rotation else NodeHealth.DRAINING
    return _change(engine, node_id, now, health=health.value)


def set_weight(engine: Engine, node_id: str, weight: int, *, now: datetime) -> bool:
    """Give a live node another weight (its share of traffic); whether it changed."""
    if not 1 <= weight <= _MAX_WEIGHT:
        raise InvalidArgument("weight", f"must be 1..{_MAX_WEIGHT}, got {weight}")
    return _change(engine, node_id, now, weight=weight)


def mark_down(engine: Engine, node_id: str, *, now: datetime) -> bool:
    """Mark a live node down now, as if it had deregistered; whether it changed."""
    return _change(engine, node_id, now, health=NodeHealth.DOWN.value, down_since=now)


def purge_down(engine: Engine, *, now: datetime) -> list[str]:
    """Delete every node that is down (deregistered or lapsed); the ids deleted."""
    down = nodes.c.health == NodeHealth.DOWN.value
    with write_transaction(engine) as conn:
        revision = _Revision(conn, now)
        found = list(conn.execute(sa.select(nodes.c.node_id).where(down)).scalars())
        for node_id in found:
            conn.execute(sa.delete(nodes).where(nodes.c.node_id == node_id, down))
            revision.record(node_id)
        revision.save()
    return sorted(found)


def _change(engine: Engine, node_id: str, now: datetime, **values: object) -> bool:
    with write_transaction(engine) as conn:
        row = conn.execute(
            sa.select(nodes.c.health, nodes.c.weight).where(nodes.c.node_id == node_id)
        ).first()
        if row is None:
            raise NotFound(f"node_id: no node {node_id!r} is registered")
        if row.health not in _LIVE:
            raise InvalidArgument("node_id", f"{node_id} is down; nothing to change")
        current = {"health": row.health, "weight": row.weight}
        if all(current.get(k, object()) == v for k, v in values.items() if k in current):
            return False
        revision = _Revision(conn, now)
        conn.execute(
            sa.update(nodes)
            .where(nodes.c.node_id == node_id, nodes.c.health.in_(_LIVE))
            .values(revision=revision.next, **values)
        )
        revision.record(node_id)
        revision.save()
        return True
