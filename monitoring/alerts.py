"""Alerts: rules evaluated against traffic and node health, raised and cleared in time.

An :class:`AlertBook` is given, every second, what each rule's condition says about each
subject (a service or a node) — a :class:`Finding`. A finding that holds for the rule's
``for`` raises an :class:`Alert`; the first evaluation without it clears the alert. Every
raise and clear goes to the book's listeners (the live stream, the alert log, and the
event bus once events exist).

>>> book = AlertBook()
>>> rule = AlertRule(name="down", kind=AlertKind.NODE_DOWN)
>>> book.evaluate([Finding(rule, "echo-2", "lease lapsed")], now=100.0)
[Alert(rule='down', ... subject='echo-2', ...)]
>>> [a.subject for a in book.active()], book.evaluate([], now=101.0)[0].cleared_at
(['echo-2'], 101.0)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from powerbus.monitoring.rules import AlertKind, AlertRule, Severity

__all__ = ["Alert", "AlertBook", "AlertListener", "Finding"]

log = logging.getLogger(__name__)

_HISTORY = 200


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's condition holds for ``subject`` now."""

    rule: AlertRule
    subject: str
    message: str
    value: float | None = None
    confirmed: bool = False
    """Already held long enough elsewhere (a lapsed lease has run its whole TTL): raised
    without the rule's hold time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert; ``cleared_at`` is None while it is active. Times are epoch seconds."""

    rule: str
    kind: AlertKind
    severity: Severity
    subject: str
    message: str
    raised_at: float
    cleared_at: float | None = None
    value: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject)

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "subject": self.subject,
            "message": self.message,
            "value": self.value,
            "raised_at": _iso(self.raised_at),
            "cleared_at": _iso(self.cleared_at) if self.cleared_at is not None else None,
            "active": self.active,
        }


AlertListener = Callable[[Alert], None]


class AlertBook:
    """Active alerts, recent history, and who is told of changes."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], float] = {}
        self._active: dict[tuple[str, str], Alert] = {}
        self._history: list[Alert] = []
        self._listeners: list[AlertListener] = []

    def add_listener(self, listener: AlertListener) -> None:
        """Call ``listener`` with every alert raised and every alert cleared."""
        self._listeners.append(listener)

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Take over alerts a previous run left active; the next evaluation clears those
        whose condition is gone."""
        for alert in alerts:
            if alert.active:
                self._active.setdefault(alert.key, alert)
            else:
                self._history.append(alert)
        self._history = self._history[-_HISTORY:]

    def evaluate(self, findings: Iterable[Finding], *, now: float) -> list[Alert]:
        """Raise, keep or clear alerts given every finding now; returns what changed."""
        changed: list[Alert] = []
        holding: dict[tuple[str, str], Finding] = {}
        for finding in findings:
            holding.setdefault((finding.rule.name, finding.subject), finding)
        for key, finding in holding.items():
            alert = self._active.get(key)
            if alert is not None:
                if alert.message != finding.message or alert.value != finding.value:
                    self._active[key] = replace(alert, message=finding.message, value=finding.value)
                continue
            since = self._pending.setdefault(key, now)
            if finding.confirmed or now - since >= finding.rule.hold.total_seconds():
                self._pending.pop(key, None)
                alert = Alert(
                    rule=finding.rule.name,
                    kind=finding.rule.kind,
                    severity=finding.rule.severity,
                    subject=finding.subject,
                    message=finding.message,
                    raised_at=now,
                    value=finding.value,
                )
                self._active[key] = alert
                changed.append(alert)
        for key in [k for k in self._pending if k not in holding]:
            del self._pending[key]
        for key in [k for k in self._active if k not in holding]:
            cleared = replace(self._active.pop(key), cleared_at=now)
            self._history.append(cleared)
            changed.append(cleared)
        del self._history[:-_HISTORY]
        for alert in changed:
            self._tell(alert)
        return changed

    def active(self) -> list[Alert]:
        """Active alerts, critical first, newest first."""
        return sorted(
            self._active.values(),
            key=lambda a: (a.severity is not Severity.CRITICAL, -a.raised_at, a.subject),
        )

    def recent(self, limit: int = 50) -> list[Alert]:
        """Cleared alerts, newest first."""
        return sorted(self._history, key=lambda a: -(a.cleared_at or 0))[:limit]

    def _tell(self, alert: Alert) -> None:
        for listener in list(self._listeners):
            try:
                listener(alert)
            except Exception:
                log.exception("alert listener %r failed", listener)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
