"""Passive outlier ejection: nodes whose calls fail are taken out of rotation for a while.

Two detectors, as in Envoy and gRPC (gRFC A50):

- **consecutive failures**: a node whose last ``consecutive_failures`` calls all failed is
  ejected at once;
- **failure share**, evaluated every ``interval_s``: a node with at least
  ``min_requests`` calls in the interval, of which ``failure_share`` or more failed, is
  ejected (this one works for two- and three-node services, where success-rate
  statistics over the other nodes have nothing to compare with).

An ejection lasts ``base_ejection_s`` times the number of times the node was ejected
recently, capped at ``max_ejection_s``; each clean interval takes one off that count.
Ejections stop when they would leave fewer than ``min_healthy`` nodes in rotation or eject
more than ``max_ejected_share`` of them: the explicit minimum keeps the last node of a
small service serving (Envoy's percentage alone ejects one of two nodes on five errors).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["OutlierDetector", "OutlierSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlierSettings:
    enabled: bool = True
    consecutive_failures: int = 5
    """0 turns the consecutive-failure detector off."""
    interval_s: float = 10.0
    failure_share: float = 0.5
    """Share of failed calls in an interval that ejects; 0 turns the detector off."""
    min_requests: int = 20
    base_ejection_s: float = 30.0
    max_ejection_s: float = 300.0
    max_ejected_share: float = 0.5
    min_healthy: int = 1


class _Record:
    __slots__ = ("calls", "consecutive", "ejected_until", "ejections", "failures", "reason")

    def __init__(self) -> None:
        self.consecutive = 0
        self.calls = 0
        self.failures = 0
        self.ejections = 0
        self.ejected_until = 0.0
        self.reason = ""


class OutlierDetector:
    """Ejection state of the nodes of one service.

    >>> d = OutlierDetector(OutlierSettings(consecutive_failures=2, min_healthy=1))
    >>> d.members(["a", "b"], now=0.0)
    >>> d.record("a", failed=True, now=1.0), d.record("a", failed=True, now=1.1)
    (False, True)
    >>> d.ejected("a", 2.0), d.ejected("a", 31.2)
    (True, False)
    """

    def __init__(self, settings: OutlierSettings | None = None) -> None:
        self.settings = settings or OutlierSettings()
        self._nodes: dict[str, _Record] = {}
        self._interval_end = 0.0
        self.detected = 0
        """Ejections the detectors asked for."""
        self.enforced = 0
        """Ejections that happened (the rest would have broken the limits)."""

    def members(self, node_ids: Iterable[str], *, now: float) -> None:
        """The nodes of the service now; others are forgotten, new ones start clean."""
        ids = set(node_ids)
        self._nodes = {k: v for k, v in self._nodes.items() if k in ids}
        for node_id in ids:
            self._nodes.setdefault(node_id, _Record())
        if self._interval_end == 0.0:
            self._interval_end = now + self.settings.interval_s

    def ejected(self, node_id: str, now: float) -> bool:
        record = self._nodes.get(node_id)
        return record is not None and record.ejected_until > now

    def ejected_until(self, node_id: str) -> float:
        record = self._nodes.get(node_id)
        return record.ejected_until if record is not None else 0.0

    def reason(self, node_id: str) -> str:
        record = self._nodes.get(node_id)
        return record.reason if record is not None else ""

    def record(self, node_id: str, *, failed: bool, now: float) -> bool:
        """Count one call's result; True when it ejected the node."""
        record = self._nodes.get(node_id)
        if record is None or not self.settings.enabled:
            return False
        record.calls += 1
        if not failed:
            record.consecutive = 0
            return False
        record.failures += 1
        record.consecutive += 1
        limit = self.settings.consecutive_failures
        if limit and record.consecutive >= limit and record.ejected_until <= now:
            record.consecutive = 0
            return self._eject(node_id, record, now, f"{limit} consecutive failures")
        return False

    def uneject(self, node_id: str) -> bool:
        """Return a node early (a passing active health check); True if it was ejected."""
        record = self._nodes.get(node_id)
        if record is None or record.ejected_until == 0.0:
            return False
        record.ejected_until = 0.0
        return True

    def next_event(self) -> float:
        """When :meth:`tick` next has something to do."""
        pending = [r.ejected_until for r in self._nodes.values() if r.ejected_until > 0.0]
        return min([self._interval_end, *pending]) if self.settings.enabled else math.inf

    def tick(self, now: float) -> bool:
        """Return nodes whose time is up and evaluate a finished interval; True if the
        set of ejected nodes changed."""
        changed = False
        for record in self._nodes.values():
            if 0.0 < record.ejected_until <= now:
                record.ejected_until = 0.0
                changed = True
        if now >= self._interval_end:
            changed = self._end_interval(now) or changed
            self._interval_end = now + self.settings.interval_s
        return changed

    def _end_interval(self, now: float) -> bool:
        settings = self.settings
        changed = False
        for node_id, record in sorted(self._nodes.items()):
            if (
                settings.failure_share > 0
                and record.calls >= settings.min_requests
                and record.failures >= settings.failure_share * record.calls
                and record.ejected_until <= now
            ):
                share = f"{record.failures / record.calls:.0%} of calls failed"
                changed = self._eject(node_id, record, now, share) or changed
            elif record.failures == 0 and record.ejected_until <= now and record.ejections > 0:
                record.ejections -= 1
            record.calls = record.failures = 0
        return changed

    def _eject(self, node_id: str, record: _Record, now: float, reason: str) -> bool:
        self.detected += 1
        settings = self.settings
        total = len(self._nodes)
        ejected = sum(1 for r in self._nodes.values() if r.ejected_until > now)
        if total - ejected - 1 < settings.min_healthy:
            return False
        if (ejected + 1) > settings.max_ejected_share * total:
            return False
        self.enforced += 1
        record.ejections += 1
        cap = max(settings.max_ejection_s, settings.base_ejection_s)
        record.ejected_until = now + min(settings.base_ejection_s * record.ejections, cap)
        record.reason = reason
        return True
