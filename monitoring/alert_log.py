"""The alert log: every alert raised, and when it cleared, in the bus database.

It lets ``/api/alerts`` show history across restarts, and a restarted bus take over the
alerts its previous run left active (clearing them if their condition is gone).

>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.monitoring.migrations import MIGRATIONS
>>> from powerbus.monitoring.rules import AlertKind, Severity
>>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
>>> book = AlertLog(engine, writer="bus-1")
>>> book.record(Alert(rule="node-down", kind=AlertKind.NODE_DOWN, severity=Severity.CRITICAL,
...                   subject="echo-2", message="lease lapsed", raised_at=1700000000.0))
>>> [a.subject for a in book.unfinished()]
['echo-2']
>>> engine.dispose()
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.monitoring.alerts import Alert
from powerbus.monitoring.rules import AlertKind, Severity
from powerbus.monitoring.tables import alerts

__all__ = ["AlertLog"]

_RESTORE_LIMIT = 500
_RECENT_LIMIT = 200


class AlertLog:
    """Writes alerts as they are raised and cleared; reads back the unfinished ones."""

    def __init__(self, engine: Engine, *, writer: str) -> None:
        self._engine = engine
        self._writer = writer[:64]

    def record(self, alert: Alert) -> None:
        """Insert a raised alert, or mark the open row of a cleared one."""
        with write_transaction(self._engine) as conn:
            if alert.active:
                conn.execute(
                    alerts.insert().values(
                        rule=alert.rule[:128],
                        kind=alert.kind.value,
                        severity=alert.severity.value,
                        subject=alert.subject[:256],
                        message=alert.message,
                        raised_at=_time(alert.raised_at),
                        cleared_at=None,
                        writer=self._writer,
                    )
                )
                return
            conn.execute(
                alerts.update()
                .where(
                    alerts.c.rule == alert.rule[:128],
                    alerts.c.subject == alert.subject[:256],
                    alerts.c.cleared_at.is_(None),
                )
                .values(cleared_at=_time(alert.cleared_at or 0.0))
            )

    def unfinished(self) -> list[Alert]:
        """Alerts raised and not cleared (by any bus sharing the database)."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(alerts)
                .where(alerts.c.cleared_at.is_(None))
                .order_by(alerts.c.raised_at.desc())
                .limit(_RESTORE_LIMIT)
            ).all()
        return _alerts(rows)

    def recent(self, limit: int = _RECENT_LIMIT) -> list[Alert]:
        """The latest cleared alerts, newest first: "recent" survives a restart."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(alerts)
                .where(alerts.c.cleared_at.is_not(None))
                .order_by(alerts.c.cleared_at.desc())
                .limit(limit)
            ).all()
        return _alerts(rows)


def _alerts(rows: Iterable[Any]) -> list[Alert]:
    found = []
    for row in rows:
        try:
            kind, severity = AlertKind(row.kind), Severity(row.severity)
        except ValueError:
            continue  # written by a newer version
        found.append(
            Alert(
                rule=row.rule,
                kind=kind,
                severity=severity,
                subject=row.subject,
                message=row.message,
                raised_at=_epoch(row.raised_at),
                cleared_at=_epoch(row.cleared_at) if row.cleared_at is not None else None,
            )
        )
    return found


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
