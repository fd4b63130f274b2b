"""Retry policy, hedging and the retry budget: when a failed call may be tried again.

A call is retried only where that is safe: the method is idempotent (proto
``idempotency_level`` or ``x-powerbus-idempotent``), or the failed attempt provably never
reached a node (refused before it ran), as gRPC's transparent retries do. Waits grow
exponentially with full jitter (uniform in ``[0, min(max, base*2^n)]``), every attempt
fits inside the caller's deadline, a retry never goes to the node that just failed, and a
budget caps retries at a share of the calls in flight, so retries cannot multiply an
overload (Envoy's ``retry_budget``: 20 %, at least 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from powerbus.load_balancer.status import StatusCode

__all__ = ["FaultTolerance", "HedgeSettings", "RetryBudget", "RetrySettings"]


class FaultTolerance(str, Enum):
    """What a call does when a node fails it, after Dubbo's cluster modes."""

    AUTO = "auto"
    """``failover`` for idempotent methods, ``failfast`` for the rest."""
    FAILOVER = "failover"
    """Retry on another node (idempotent methods only; others fail fast)."""
    FAILFAST = "failfast"
    """One attempt; retried only when it never reached a node."""
    FORKING = "forking"
    """Call ``forks`` nodes at once, first success wins (idempotent methods only)."""
    BROADCAST = "broadcast"
    """Call every node in rotation; fails if any fails (e.g. cache invalidation)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    max_attempts: int = 3
    """Attempts in all, the first included."""
    backoff_base_s: float = 0.025
    backoff_max_s: float = 0.250
    retry_on: frozenset[StatusCode] = frozenset({StatusCode.UNAVAILABLE})
    """Status codes worth another node's try (a per-try timeout always is)."""
    per_try_timeout_s: float = 0.0
    """Deadline of one attempt inside the call's; 0 gives each attempt all that is left."""
    budget_ratio: float = 0.2
    """Retries in flight may be at most this share of the service's calls in flight..."""
    budget_min: int = 3
    """... or this many, whichever is more."""
    min_attempt_s: float = 0.005
    """No attempt starts with less than this left before the deadline."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgeSettings:
    """Hedging, for methods without side effects: when the first attempt has not answered
    within ``delay_s``, another node is asked too, and the first answer wins."""

    delay_s: float = 0.0
    """0 turns hedging off."""
    max_hedges: int = 1


@dataclass(slots=True)
class RetryBudget:
    """Retries in flight for one service, against its share of calls in flight.

    >>> budget = RetryBudget(RetrySettings(budget_ratio=0.2, budget_min=1))
    >>> budget.acquire(active=1), budget.acquire(active=1)
    (True, False)
    >>> budget.release(); budget.acquire(active=10)
    True
    """

    settings: RetrySettings = field(default_factory=RetrySettings)
    in_flight: int = 0
    refused: int = 0
    """Retries the budget refused."""

    def limit(self, active: int) -> int:
        return max(self.settings.budget_min, int(self.settings.budget_ratio * active))

    def acquire(self, *, active: int) -> bool:
        """Take a slot for one retry, given the service's calls in flight."""
        if self.in_flight >= self.limit(active):
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
