"""Alerts as ``/api/alerts`` and the dashboard show them: each with who acknowledged it
and whether it is silenced, beside the silences, webhook delivery and the rules.

>>> from powerbus.monitoring.silences import Silences
>>> from powerbus.monitoring.rules import AlertKind, Severity
>>> down = Alert(rule="node-down", kind=AlertKind.NODE_DOWN, severity=Severity.CRITICAL,
...              subject="echo-1", message="echo-1 is down", raised_at=0.0)
>>> {k: alert_json(down, Silences())[k] for k in ("active", "silenced", "acknowledged_by")}
{'active': True, 'silenced': False, 'acknowledged_by': None}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from powerbus.monitoring.alerts import Alert, AlertBook
from powerbus.monitoring.delivery import WebhookDelivery
from powerbus.monitoring.rules import AlertRule
from powerbus.monitoring.silences import Silences

__all__ = ["alert_json", "alerts_json"]


def alert_json(alert: Alert, silences: Silences) -> dict[str, Any]:
    """One alert, with ``acknowledged_by`` and ``silenced`` for the dashboard's actions."""
    found = alert.as_json()
    ack = silences.acknowledgement(alert.rule, alert.subject) if alert.active else None
    found["acknowledged_by"] = ack.by if ack else None
    found["silenced"] = silences.silenced(alert.rule, alert.subject)
    return found


def alerts_json(
    book: AlertBook,
    *,
    silences: Silences,
    delivery: WebhookDelivery,
    rules: Iterable[AlertRule],
) -> dict[str, Any]:
    """What ``/api/alerts`` answers: active and recent alerts, silences, webhook
    delivery counts and the rules in force (``for_s`` their hold)."""
    return {
        "active": [alert_json(a, silences) for a in book.active()],
        "silences": silences.as_json(),
        "webhooks": {
            "urls": len(delivery.urls),
            "delivered": delivery.delivered,
            "failed": delivery.failed,
        },
        "recent": [a.as_json() for a in book.recent()],
        "rules": [
            {
                "name": r.name,
                "kind": r.kind.value,
                "severity": r.severity.value,
                "service": r.service,
                "node": r.node,
                "threshold": r.threshold,
                "window_s": r.window.total_seconds(),
                "for_s": r.hold.total_seconds(),
            }
            for r in rules
        ],
    }
