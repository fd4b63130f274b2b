"""The registry's database side: blocking calls, run in a worker thread by ``Registry``.

Each method is one short transaction. Changes to membership (register, deregister, a
lease lapsing, a purge) take the revision row and log themselves; a heartbeat only
renews the lease and stores the load, so it is no change (see ``Registry``).
Conditional UPDATEs make every write safe to race with another bus instance doing the
same: the loser changes no row and logs nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from google.protobuf import descriptor_pb2
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, LeaseExpired, NotFound
from powerbus.bus.kernel.nodes import Dependency, Load, NodeHealth, NodeRecord, Priority
from powerbus.bus.registry._descriptors import parse_files
from powerbus.bus.registry._tables import STATE_ROW, changes, nodes, state
from powerbus.bus.registry._validation import Registration

__all__ = ["Delta", "Store", "StoredNode"]

_LIVE = (NodeHealth.UP.value, NodeHealth.DRAINING.value)
_DOWN = NodeHealth.DOWN.value
# Past this many changed nodes a poll reads the whole table instead of an IN list.
_MAX_INCREMENTAL = 500


@dataclass(frozen=True, slots=True)
class StoredNode:
    record: NodeRecord
    revision: int
    files: tuple[descriptor_pb2.FileDescriptorProto, ...]


@dataclass(frozen=True, slots=True)
class Delta:
    """What changed after a revision. With ``full``, ``nodes`` is the whole table."""

    revision: int
    nodes: tuple[StoredNode, ...]
    removed: tuple[tuple[str, int], ...]
    full: bool


class _Revision:
    """The revision row of one write transaction, locked until it commits."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn, self._now = conn, now
        query = sa.select(state.c.revision).where(state.c.id == STATE_ROW).with_for_update()
        self._start = self.current = int(conn.execute(query).scalar_one())

    @property
    def next(self) -> int:
        return self.current + 1

    @property
    def count(self) -> int:
        """Changes recorded so far in this transaction."""
        return self.current - self._start

    def record(self, node_id: str) -> int:
        self.current += 1
        entry = {"revision": self.current, "node_id": node_id, "changed_at": self._now}
        self._conn.execute(sa.insert(changes).values(entry))
        return self.current

    def save(self) -> None:
        if self.current != self._start:
            update = sa.update(state).where(state.c.id == STATE_ROW)
            self._conn.execute(update.values(revision=self.current))


class Store:
    """Registry operations on one engine; every method blocks, so call it off the loop."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def holder(self, node_id: str, now: datetime) -> tuple[str, str] | None:
        """``(lease_id, address)`` of the live, current lease on ``node_id``, or None."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(nodes.c.lease_id, nodes.c.address).where(
                    nodes.c.node_id == node_id,
                    nodes.c.health.in_(_LIVE),
                    nodes.c.lease_expires_at >= now,
                )
            ).first()
        return None if row is None else (row.lease_id, row.address)

    def register(
        self, reg: Registration, now: datetime, *, replaces: str | None = None
    ) -> tuple[str, datetime]:
        """Insert or replace ``reg``; returns its new lease id and expiry.

        A live, current lease on the node id is replaced only if it is ``replaces`` (the
        caller checked the registrant may take it); otherwise :class:`AlreadyExists`.
        """
        expires = now + reg.lease_ttl
        lease_id = uuid.uuid4().hex
        with write_transaction(self._engine) as conn:
            revision = _Revision(conn, now)
            held = conn.execute(
                sa.select(
                    nodes.c.address, nodes.c.health, nodes.c.lease_expires_at, nodes.c.lease_id
                ).where(nodes.c.node_id == reg.node_id)
            ).first()
            if (
                held is not None
                and held.health in _LIVE
                and held.lease_expires_at >= now
                and held.lease_id != replaces
            ):
                raise AlreadyExists(
                    "node_id",
                    f"{reg.node_id!r} is held by the live instance at {held.address}; "
                    "only its lease holder may register it again",
                )
            values = _registration_values(reg, lease_id=lease_id, now=now, expires=expires)
            values["revision"] = revision.next
            if held is None:
                conn.execute(sa.insert(nodes).values(node_id=reg.node_id, **values))
            else:
                conn.execute(sa.update(nodes).where(nodes.c.node_id == reg.node_id).values(values))
            revision.record(reg.node_id)
            revision.save()
        return lease_id, expires

    def heartbeat(self, node_id: str, lease_id: str, load: Load, now: datetime) -> datetime:
        """Renew a current lease; raises :class:`LeaseExpired` for any other."""
        current = (
            nodes.c.node_id == node_id,
            nodes.c.lease_id == lease_id,
            nodes.c.health.in_(_LIVE),
            nodes.c.lease_expires_at >= now,
        )
        with write_transaction(self._engine) as conn:
            ttl_ms = conn.execute(sa.select(nodes.c.lease_ttl_ms).where(*current)).scalar()
            if ttl_ms is not None:
                expires = now + timedelta(milliseconds=ttl_ms)
                renew = sa.update(nodes).where(*current)
                renew = renew.values(
                    lease_expires_at=expires, last_heartbeat_at=now, load=asdict(load)
                )
                if conn.execute(renew).rowcount == 1:
                    return expires
        raise LeaseExpired(
            f"lease_id: lease {lease_id!r} of {node_id!r} is unknown or lapsed; register again"
        )

    def deregister(self, node_id: str, lease_id: str, now: datetime) -> None:
        """Mark the node down now; repeating it is a no-op."""
        with write_transaction(self._engine) as conn:
            revision = _Revision(conn, now)
            row = conn.execute(
                sa.select(nodes.c.lease_id, nodes.c.health).where(nodes.c.node_id == node_id)
            ).first()
            if row is None:
                raise NotFound(f"node_id: no node {node_id!r} is registered")
            if row.lease_id != lease_id:
                raise LeaseExpired(
                    f"lease_id: {lease_id!r} is not the current lease of {node_id!r}"
                )
            if row.health != _DOWN:
                conn.execute(
                    sa.update(nodes)
                    .where(nodes.c.node_id == node_id)
                    .values(health=_DOWN, down_since=now, revision=revision.next)
                )
                revision.record(node_id)
            revision.save()

    def extend(self, by: timedelta) -> int:
        """Push every live lease ``by`` later (after the bus itself stalled); returns how
        many. Not a change: like a heartbeat, it only moves the expiry."""
        live = nodes.c.health.in_(_LIVE)
        with write_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(nodes.c.node_id, nodes.c.lease_id, nodes.c.lease_expires_at).where(live)
            ).all()
            for node_id, lease_id, expires in rows:
                conn.execute(
                    sa.update(nodes)
                    .where(nodes.c.node_id == node_id, nodes.c.lease_id == lease_id, live)
                    .values(lease_expires_at=expires + by)
                )
            return len(rows)

    def expire(self, now: datetime) -> int:
        """Mark down every live node whose lease lapsed; returns how many this call did."""
        lapsed = (nodes.c.health.in_(_LIVE), nodes.c.lease_expires_at < now)
        with read_transaction(self._engine) as conn:
            found = conn.execute(sa.select(nodes.c.node_id, nodes.c.lease_id).where(*lapsed)).all()
        if not found:
            return 0
        with write_transaction(self._engine) as conn:
            revision = _Revision(conn, now)
            for node_id, lease_id in found:
                mark = sa.update(nodes).where(
                    nodes.c.node_id == node_id, nodes.c.lease_id == lease_id, *lapsed
                )
                mark = mark.values(health=_DOWN, down_since=now, revision=revision.next)
                if conn.execute(mark).rowcount == 1:
                    revision.record(node_id)
            revision.save()
            return revision.count

    def purge(
        self, now: datetime, *, down_before: datetime, log_before: datetime | None = None
    ) -> int:
        """Delete nodes down since before ``down_before``, and (if given) change-log rows
        from before ``log_before``; returns how many nodes this call deleted."""
        gone = (nodes.c.health == _DOWN, nodes.c.down_since < down_before)
        with read_transaction(self._engine) as conn:
            found = conn.execute(sa.select(nodes.c.node_id).where(*gone)).scalars().all()
        if not found and log_before is None:
            return 0
        with write_transaction(self._engine) as conn:
            revision = _Revision(conn, now)
            for node_id in found:
                if conn.execute(sa.delete(nodes).where(nodes.c.node_id == node_id, *gone)).rowcount:
                    revision.record(node_id)
            revision.save()
            if log_before is not None:
                # A poller that falls behind a pruned log reloads the whole table.
                conn.execute(sa.delete(changes).where(changes.c.changed_at < log_before))
            return revision.count

    def read_since(self, cursor: int) -> Delta:
        """The changes after revision ``cursor`` (-1 for everything)."""
        with read_transaction(self._engine, snapshot=True) as conn:
            head = int(conn.execute(sa.select(state.c.revision)).scalar_one())
            if head == cursor:
                return Delta(head, (), (), full=False)
            if 0 <= cursor < head:
                entries = conn.execute(
                    sa.select(changes.c.node_id, changes.c.revision)
                    .where(changes.c.revision > cursor)
                    .order_by(changes.c.revision)
                ).all()
                latest = dict(entries)
                # Revisions are contiguous, so a short log means it was pruned past us.
                if len(entries) == head - cursor and len(latest) <= _MAX_INCREMENTAL:
                    rows = conn.execute(sa.select(nodes).where(nodes.c.node_id.in_(latest)))
                    found = _stored(rows)
                    ids = {n.record.node_id for n in found}
                    removed = tuple((i, r) for i, r in latest.items() if i not in ids)
                    return Delta(head, found, removed, full=False)
            return Delta(head, _stored(conn.execute(sa.select(nodes))), (), full=True)

    def list_nodes(self) -> list[NodeRecord]:
        """Every node as stored now, with its latest load and lease (no descriptors)."""
        columns = [c for c in nodes.c if c.name != "file_descriptor_set"]
        with read_transaction(self._engine) as conn:
            return [_record(row._mapping) for row in conn.execute(sa.select(*columns))]


def _registration_values(
    reg: Registration, *, lease_id: str, now: datetime, expires: datetime
) -> dict[str, Any]:
    return {
        "kind": reg.kind,
        "address": reg.address,
        "services": list(reg.services),
        "weight": reg.weight,
        "zone": reg.zone,
        "priority": reg.priority.value,
        "health": NodeHealth.UP.value,
        "dependencies": [asdict(d) for d in reg.dependencies],
        "meta": dict(reg.metadata),
        "load": asdict(Load()),
        "file_descriptor_set": reg.descriptor_set,
        "lease_id": lease_id,
        "lease_ttl_ms": round(reg.lease_ttl.total_seconds() * 1000),
        "registered_at": now,
        "last_heartbeat_at": now,
        "lease_expires_at": expires,
        "down_since": None,
    }


def _stored(rows: Iterable[Any]) -> tuple[StoredNode, ...]:
    found = [
        StoredNode(_record(row._mapping), row.revision, parse_files(row.file_descriptor_set))
        for row in rows
    ]
    return tuple(sorted(found, key=lambda n: n.revision))


def _record(row: Mapping[Any, Any]) -> NodeRecord:
    return NodeRecord(
        node_id=row["node_id"],
        kind=row["kind"],
        address=row["address"],
        services=tuple(row["services"]),
        weight=row["weight"],
        zone=row["zone"],
        priority=Priority(row["priority"]),
        health=NodeHealth(row["health"]),
        dependencies=tuple(Dependency(**d) for d in row["dependencies"]),
        metadata=row["meta"],
        load=Load(**row["load"]),
        registered_at=row["registered_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        lease_expires_at=row["lease_expires_at"],
        lease_id=row["lease_id"],
        down_since=row["down_since"],
    )
