"""The audit record: every administrative change, who made it, from where, before and after.

Append-only: powerbus inserts rows and never updates or deletes them. An entry is written
in the same transaction as the change it records, so a change is never without its entry
(and an entry never without its change).

>>> Actor.local().identity.startswith("local/")
True
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import socket
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.access.tables import audit
from powerbus.bus.kernel.database import read_transaction, write_transaction

__all__ = ["Actor", "AuditEntry", "AuditLog", "AuditedTable"]


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an authenticated identity (``node/…``, ``user/…``) and the peer
    address it came from. ``local/<os user>`` is an operator on the bus's own host, acting on
    the database directly (root on the host is outside the threat model)."""

    identity: str
    peer: str

    @classmethod
    def local(cls) -> Actor:
        """The operator running this process on this host."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(identity=f"local/{user}", peer=f"local:{socket.gethostname()}")


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change."""

    entry_id: int
    at: datetime
    identity: str
    peer: str
    action: str
    """What was done: ``policy.set``, ``token.create``, ``rule.add``, ``node.deregister``…"""
    target: str
    before: Any
    after: Any

    def as_json(self) -> dict[str, Any]:
        """The entry as ``/api/audit`` and ``powerbus audit --json`` show it."""
        return {
            "entry_id": self.entry_id,
            "at": self.at.isoformat(),
            "identity": self.identity,
            "peer": self.peer,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class AuditLog:
    """Writes and reads the ``access_audit`` table."""

    def __init__(
        self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    ) -> None:
        self.engine = engine
        self._clock = clock

    def add(
        self,
        conn: Connection,
        actor: Actor,
        action: str,
        target: str,
        *,
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Record a change inside the transaction ``conn`` that makes it."""
        conn.execute(
            sa.insert(audit).values(
                at=self._clock(),
                identity=actor.identity[:200],
                peer=actor.peer[:200],
                action=action,
                target=target[:200],
                before=_dump(before),
                after=_dump(after),
            )
        )

    def record(
        self, actor: Actor, action: str, target: str, *, before: Any = None, after: Any = None
    ) -> None:
        """Record a change made elsewhere (in another store's transaction) on its own."""
        with write_transaction(self.engine) as conn:
            self.add(conn, actor, action, target, before=before, after=after)

    def latest(self) -> int:
        """The newest entry's id (0 if none): it changes with every token or rule change,
        which is written with its entry, so readers know when to read those again."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.max(audit.c.entry_id))).scalar() or 0)

    def entries(
        self, *, since: datetime | None = None, action: str = "", limit: int = 100
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries (newest first), from ``since`` on, of ``action``
        (a prefix: ``policy`` matches ``policy.set`` and ``policy.delete``)."""
        query = sa.select(audit).order_by(audit.c.entry_id.desc()).limit(max(1, min(limit, 10_000)))
        if since is not None:
            query = query.where(audit.c.at >= since)
        if action:
            query = query.where(audit.c.action.startswith(action, autoescape=True))
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(
                entry_id=r.entry_id,
                at=r.at,
                identity=r.identity,
                peer=r.peer,
                action=r.action,
                target=r.target,
                before=_load(r.before),
                after=_load(r.after),
            )
            for r in rows
        ]


class AuditedTable:
    """Base of the stores whose every change is audited in its own transaction (tokens,
    rules): the engine, the audit log to write to, and the clock of both."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.engine = engine
        self._audit = audit
        self._clock = clock
