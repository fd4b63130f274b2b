"""The policy store: stored overrides in the registry database, and their revision.

Blocking calls, each one short transaction, run in a worker thread by the watcher.

>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.bus.registry.migrations import MIGRATIONS
>>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
>>> store = PolicyStore(engine)
>>> store.write("s", set_={"picker": "random"}, unset=(), reset=False, by="ops", now=EPOCH).revision
1
>>> [(p.service, dict(p.settings)) for p in store.read_since(0)[1]]
[('s', {'picker': 'random'})]
>>> engine.dispose()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.bus.kernel.nodes import EPOCH
from powerbus.bus.kernel.policy import ServicePolicy
from powerbus.bus.policy._tables import STATE_ROW, overrides, state
from powerbus.bus.policy.book import ALL_SERVICES, StoredPolicy

__all__ = ["EPOCH", "PolicyStore", "check_service"]

_MAX_SERVICE = 300


def check_service(service: str) -> str:
    """A service name fit to store a policy under (``"*"`` for every service)."""
    name = service.strip()
    if not name:
        raise InvalidArgument("service", "required (a full service name, or * for all)")
    if len(name) > _MAX_SERVICE:
        raise InvalidArgument("service", f"at most {_MAX_SERVICE} characters")
    if name != ALL_SERVICES and (" " in name or "/" in name):
        raise InvalidArgument("service", f"not a full service name: {service!r}")
    return name


class PolicyStore:
    """Reads and writes ``policy_overrides`` on an engine someone else owns."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def revision(self) -> int:
        with read_transaction(self._engine) as conn:
            query = sa.select(state.c.revision).where(state.c.id == STATE_ROW)
            return int(conn.execute(query).scalar_one())

    def read_since(self, revision: int) -> tuple[int, list[StoredPolicy]]:
        """The store's revision and every service changed after ``revision``."""
        with read_transaction(self._engine, snapshot=True) as conn:
            current = conn.execute(
                sa.select(state.c.revision).where(state.c.id == STATE_ROW)
            ).scalar_one()
            rows = conn.execute(
                sa.select(overrides)
                .where(overrides.c.revision > revision)
                .order_by(overrides.c.revision)
            ).mappings()
            return int(current), [_stored(row) for row in rows]

    def write(
        self,
        service: str,
        *,
        set_: Mapping[str, str],
        unset: Iterable[str],
        reset: bool,
        by: str,
        now: datetime,
    ) -> StoredPolicy:
        """Change one service's overrides; every key is checked first."""
        service = check_service(service)
        unset = list(unset)
        ServicePolicy.from_settings(set_)  # names a bad key or value before anything changes
        for key in unset:
            ServicePolicy.from_settings({}).get(key)
        with write_transaction(self._engine) as conn:
            revision = int(
                conn.execute(
                    sa.select(state.c.revision).where(state.c.id == STATE_ROW).with_for_update()
                ).scalar_one()
            )
            row = conn.execute(
                sa.select(overrides.c.settings).where(overrides.c.service == service)
            ).scalar_one_or_none()
            settings: dict[str, str] = {} if reset or row is None else dict(row)
            for key in unset:
                settings.pop(key, None)
            settings.update({k: str(v) for k, v in set_.items()})
            revision += 1
            values = {
                "settings": settings,
                "revision": revision,
                "updated_at": now,
                "updated_by": by[:128],
            }
            if row is None:
                conn.execute(sa.insert(overrides).values(service=service, **values))
            else:
                conn.execute(
                    sa.update(overrides).where(overrides.c.service == service).values(**values)
                )
            conn.execute(sa.update(state).where(state.c.id == STATE_ROW).values(revision=revision))
        return StoredPolicy(
            service=service, settings=settings, revision=revision, updated_at=now, updated_by=by
        )


def _stored(row: sa.RowMapping) -> StoredPolicy:
    return StoredPolicy(
        service=row["service"],
        settings=dict(row["settings"] or {}),
        revision=int(row["revision"]),
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )
