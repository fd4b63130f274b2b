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

A rule that holds for many subjects at once (a rack of nodes lost, or a flood of
registrations lapsing) is one alert, not one per subject: past ``group_at`` subjects of a
rule, the ones beyond are raised as a single alert whose subject is :data:`GROUP_SUBJECT`
and whose message counts and names them. Webhooks, the alert log and the dashboard then
carry a handful of alerts, not thousands.

>>> book = AlertBook(group_at=2)
>>> found = [Finding(rule, f"echo-{i}", "lease lapsed", confirmed=True) for i in range(5)]
>>> [(a.subject, a.value) for a in book.evaluate(found, now=100.0)]
[('echo-0', None), ('echo-1', None), ('(group)', 3.0)]
>>> book.active()[0].message
'down holds for 3 more: echo-2, echo-3, echo-4'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from powerbus.monitoring.rules import AlertKind, AlertRule, Severity

__all__ = ["GROUP_SUBJECT", "Alert", "AlertBook", "AlertListener", "Finding"]

log = logging.getLogger(__name__)

_HISTORY = 200
_NAMED_IN_GROUP = 5

GROUP_SUBJECT = "(group)"
"""The subject of the one alert that stands for a rule's subjects beyond ``group_at``."""


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

    def __init__(self, *, group_at: int = 10) -> None:
        self._group_at = group_at
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
        due: dict[str, list[Finding]] = {}  # per rule: held long enough, not raised alone
        for key, finding in holding.items():
            alert = self._active.get(key)
            if alert is not None:
                if alert.message != finding.message or alert.value != finding.value:
                    self._active[key] = replace(alert, message=finding.message, value=finding.value)
                continue
            since = self._pending.setdefault(key, now)
            if finding.confirmed or now - since >= finding.rule.hold.total_seconds():
                due.setdefault(finding.rule.name, []).append(finding)
        for found in due.values():
            changed += self._raise(found, now)
        for key in [k for k in self._pending if k not in holding]:
            del self._pending[key]
        for key in [k for k in self._active if k not in holding and k[1] != GROUP_SUBJECT]:
            changed.append(self._clear(key, now))
        for key in [k for k in self._active if k[1] == GROUP_SUBJECT and k[0] not in due]:
            changed.append(self._clear(key, now))
        del self._history[:-_HISTORY]
        for alert in changed:
            self._tell(alert)
        return changed

    def _raise(self, found: list[Finding], now: float) -> list[Alert]:
        """Raise ``found`` (one rule's due findings): alone while the rule has fewer than
        ``group_at`` alerts, the rest as (or into) the rule's group alert."""
        rule = found[0].rule
        group_key = (rule.name, GROUP_SUBJECT)
        alone = sum(1 for r, subject in self._active if r == rule.name and subject != GROUP_SUBJECT)
        room = 0 if group_key in self._active else max(0, self._group_at - alone)
        raised = [self._raise_alone(f, now) for f in found[:room]]
        rest = sorted(f.subject for f in found[room:])
        if not rest:
            return raised
        others = len(rest) - _NAMED_IN_GROUP
        message = f"{rule.name} holds for {len(rest)} more: " + ", ".join(rest[:_NAMED_IN_GROUP])
        if others > 0:
            message += f" and {others} others"
        group = self._active.get(group_key)
        if group is not None:
            self._active[group_key] = replace(group, message=message, value=float(len(rest)))
            return raised
        group = Alert(
            rule=rule.name,
            kind=rule.kind,
            severity=rule.severity,
            subject=GROUP_SUBJECT,
            message=message,
            raised_at=now,
            value=float(len(rest)),
        )
        self._active[group_key] = group
        return [*raised, group]

    def _raise_alone(self, finding: Finding, now: float) -> Alert:
        key = (finding.rule.name, finding.subject)
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
        return alert

    def _clear(self, key: tuple[str, str], now: float) -> Alert:
        cleared = replace(self._active.pop(key), cleared_at=now)
        self._history.append(cleared)
        return cleared

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
