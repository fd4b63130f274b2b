"""Keeping label values bounded, so a metric's series count cannot grow without limit.

Callers name themselves (``x-powerbus-caller``) or are named by their peer host, and
proxyless reporters send whatever they saw: a misbehaving client could otherwise mint a
new series per call. Each label keeps the first ``limit`` distinct values it sees; later
new values are counted as ``"other"``.

>>> callers = LabelLimit("caller", limit=2)
>>> [callers.fold(v) for v in ("billing-1", "crm-1", "peer:10.0.0.9", "billing-1")]
['billing-1', 'crm-1', 'other', 'billing-1']
"""

from __future__ import annotations

__all__ = ["MAX_VALUE_LENGTH", "OTHER", "LabelLimit"]

OTHER = "other"
"""What every value past a label's limit is counted as."""
MAX_VALUE_LENGTH = 128
"""Longer values are cut: a label value is a name, not a payload."""


class LabelLimit:
    """The set of values one label has taken, at most ``limit`` of them."""

    def __init__(self, name: str, *, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"{name}: label limit must be at least 1, got {limit}")
        self.name = name
        self.limit = limit
        self._seen: set[str] = set()
        self.folded = 0
        """How many values were counted as ``"other"``."""

    def fold(self, value: str) -> str:
        """``value`` itself while there is room (or it was seen before), else ``"other"``."""
        if value in self._seen:
            return value
        value = value[:MAX_VALUE_LENGTH]
        if value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        self.folded += 1
        return OTHER

    def admit(self, value: str) -> None:
        """Remember ``value`` without counting it against anything (seen in history)."""
        if len(self._seen) < self.limit:
            self._seen.add(value[:MAX_VALUE_LENGTH])

    def __len__(self) -> int:
        return len(self._seen)
