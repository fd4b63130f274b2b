"""The access store: tokens, rules and the audit record, in the bus's database.

>>> store = AccessStore.open("sqlite://")
>>> [t.identity for t in store.tokens.listed()]
[]
>>> store.close()
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from powerbus.bus.access.audit import AuditLog
from powerbus.bus.access.migrations import MIGRATIONS
from powerbus.bus.access.rule_store import Rules
from powerbus.bus.access.tokens import Tokens
from powerbus.bus.kernel.database import create_engine

__all__ = ["AccessStore"]


class AccessStore:
    """Tokens, rules and audit over one engine (the registry's, on a bus)."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine
        self.audit = AuditLog(engine)
        self.tokens = Tokens(engine, self.audit)
        self.rules = Rules(engine, self.audit)

    @classmethod
    def open(cls, db_url: str) -> AccessStore:
        """An engine of its own on ``db_url``, migrated (the CLI's way in)."""
        store = cls(create_engine(db_url), owns_engine=True)
        store.migrate()
        return store

    def migrate(self) -> None:
        """Create or upgrade the tables (safe on every start, by any number of buses)."""
        MIGRATIONS.run(self.engine)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()
