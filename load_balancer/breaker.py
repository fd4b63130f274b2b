"""Circuit breakers with a real open interval and half-open probes.

Envoy's and Dubbo's "breakers" only cap concurrency; this is the Hystrix/Resilience4j
kind. CLOSED: calls flow and the last ``window`` results are kept; once at least
``min_calls`` are in and ``failure_ratio`` of them failed, the breaker OPENs. OPEN:
nothing flows for ``open_s`` (doubling on each reopening, up to ``max_open_s``). Then
HALF_OPEN: up to ``probes`` calls at a time go through; ``probes`` successes close the
breaker, one failure opens it again.

The balancer keeps one breaker per node (an open one takes the node out of rotation) and
one per service (an open one refuses calls at once, with an error that says so).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

__all__ = ["BreakerSettings", "BreakerState", "CircuitBreaker"]


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSettings:
    enabled: bool = True
    window: int = 20
    min_calls: int = 10
    failure_ratio: float = 0.5
    open_s: float = 5.0
    max_open_s: float = 60.0
    probes: int = 3


class CircuitBreaker:
    """One breaker. ``allow`` before a call, ``record`` after it.

    >>> b = CircuitBreaker(BreakerSettings(window=4, min_calls=4, failure_ratio=0.5, open_s=5))
    >>> [b.record(failed=failed, now=0.0) for failed in (True, True, False, True)]
    [False, False, False, True]
    >>> b.state.value, b.allow(now=1.0), b.allow(now=5.0), b.state.value
    ('open', False, True, 'half_open')
    """

    def __init__(self, settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self.state = BreakerState.CLOSED
        self.open_until = 0.0
        self.opened = 0
        """How many times it opened."""
        self.tripped_ratio = 0.0
        """The failed share of the window when it last opened (a failed probe: 1.0)."""
        self._results: deque[bool] = deque(maxlen=self.settings.window)
        self._failures = 0
        self._open_s = self.settings.open_s
        self._probing = 0
        self._probe_successes = 0

    @property
    def failure_ratio(self) -> float:
        """Failed share of the results in the window."""
        return self._failures / len(self._results) if self._results else 0.0

    def allow(self, *, now: float) -> bool:
        """Whether a call may start now (without taking a probe slot)."""
        if self.state is BreakerState.CLOSED or not self.settings.enabled:
            return True
        if self.state is BreakerState.OPEN:
            if now < self.open_until:
                return False
            self._to(BreakerState.HALF_OPEN)
        return self._probing < self.settings.probes

    def started(self) -> None:
        """A call admitted by :meth:`allow` started; in HALF_OPEN it takes a probe slot."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing += 1

    def release(self) -> bool:
        """A call admitted in HALF_OPEN did not happen after all; True if it held a slot."""
        if self.state is BreakerState.HALF_OPEN and self._probing > 0:
            self._probing -= 1
            return True
        return False

    def record(self, *, failed: bool, now: float) -> bool:
        """A call ended; True when the state changed."""
        settings = self.settings
        if not settings.enabled or self.state is BreakerState.OPEN:
            return False  # calls begun before it opened say nothing new
        if self.state is BreakerState.HALF_OPEN:
            self._probing = max(0, self._probing - 1)
            if failed:
                self._open_s = min(self._open_s * 2, max(settings.max_open_s, settings.open_s))
                self._open(now)
                self.tripped_ratio = 1.0
                return True
            self._probe_successes += 1
            if self._probe_successes >= settings.probes:
                self._open_s = settings.open_s
                self._to(BreakerState.CLOSED)
                return True
            return False
        if len(self._results) == self._results.maxlen and self._results[0]:
            self._failures -= 1
        self._results.append(failed)
        self._failures += failed
        if len(self._results) >= settings.min_calls and self._failures >= (
            settings.failure_ratio * len(self._results)
        ):
            self._open(now)
            return True
        return False

    def retry_after(self, now: float) -> float:
        """Seconds until an OPEN breaker lets probes through (0 otherwise)."""
        return max(0.0, self.open_until - now) if self.state is BreakerState.OPEN else 0.0

    def _open(self, now: float) -> None:
        self.tripped_ratio = self.failure_ratio
        self.opened += 1
        self.open_until = now + self._open_s
        self._to(BreakerState.OPEN)

    def _to(self, state: BreakerState) -> None:
        self.state = state
        self._probing = self._probe_successes = 0
        if state is not BreakerState.HALF_OPEN:
            self._results.clear()
            self._failures = 0
