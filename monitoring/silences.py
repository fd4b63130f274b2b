"""Acknowledging and silencing alerts, as operators of Alertmanager do.

An *acknowledged* alert stays active and on the dashboard, marked with who took it; a
*silenced* one (matching a silence's rule and subject, ``""`` for any, until it expires)
is not delivered to webhooks. Both are this bus instance's, in memory: a restart forgets
them, as it forgets nothing else that matters (the alerts themselves are in the log).

>>> silences = Silences(clock=lambda: 100.0)
>>> s = silences.add(rule="node-down", subject="", seconds=60, by="ops", comment="upgrade")
>>> silences.silenced("node-down", "echo-2"), silences.silenced("error-share", "Echo")
(True, False)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from powerbus.bus.kernel.errors import InvalidArgument, NotFound

__all__ = ["Acknowledgement", "Silence", "Silences"]

_MAX_SECONDS = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    id: int
    rule: str
    """Rule name it matches; empty: every rule."""
    subject: str
    """Service or node it matches; empty: every subject."""
    until: float
    by: str
    comment: str

    def matches(self, rule: str, subject: str) -> bool:
        return (not self.rule or self.rule == rule) and (
            not self.subject or self.subject == subject
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledgement:
    by: str
    at: float
    comment: str


class Silences:
    """Silences and acknowledgements of one bus instance."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._silences: dict[int, Silence] = {}
        self._acks: dict[tuple[str, str], Acknowledgement] = {}
        self._ids = itertools.count(1)

    def add(
        self, *, rule: str, subject: str, seconds: float, by: str, comment: str = ""
    ) -> Silence:
        """Silence alerts of ``rule`` about ``subject`` for ``seconds``."""
        if not rule and not subject:
            raise InvalidArgument("rule", "give a rule or a subject (or both) to silence")
        if not 0 < seconds <= _MAX_SECONDS:
            raise InvalidArgument(
                "for", f"must be more than 0 and at most 30 days, got {seconds:g} s"
            )
        silence = Silence(
            id=next(self._ids),
            rule=rule,
            subject=subject,
            until=self._clock() + seconds,
            by=by,
            comment=comment,
        )
        self._silences[silence.id] = silence
        return silence

    def remove(self, silence_id: int) -> None:
        if self._silences.pop(silence_id, None) is None:
            raise NotFound(f"id: no silence {silence_id}")

    def active(self) -> list[Silence]:
        now = self._clock()
        for gone in [i for i, s in self._silences.items() if s.until <= now]:
            del self._silences[gone]
        return sorted(self._silences.values(), key=lambda s: s.id)

    def silenced(self, rule: str, subject: str) -> bool:
        return any(s.matches(rule, subject) for s in self.active())

    def acknowledge(self, rule: str, subject: str, *, by: str, comment: str = "") -> None:
        self._acks[(rule, subject)] = Acknowledgement(by=by, at=self._clock(), comment=comment)

    def acknowledgement(self, rule: str, subject: str) -> Acknowledgement | None:
        return self._acks.get((rule, subject))

    def forget(self, rule: str, subject: str) -> None:
        """An alert cleared: its acknowledgement goes with it."""
        self._acks.pop((rule, subject), None)

    def as_json(self) -> list[dict[str, object]]:
        return [asdict(s) for s in self.active()]
