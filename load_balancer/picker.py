"""The picker interface: how a balancer chooses one endpoint for one call.

A picker is pure logic over a list of endpoints; it opens no socket and reads no clock
of its own (clocks are injected), so the router and the SDK's proxyless client share it
and tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from powerbus.load_balancer.endpoint import Endpoint
from powerbus.load_balancer.status import NODE_FAILURE_CODES, StatusCode

__all__ = ["UNUSED", "Outcome", "PickRequest", "Picker"]


@dataclass(frozen=True, slots=True)
class PickRequest:
    """What is known about a call when an endpoint is picked for it."""

    method: str = ""
    """Full method, ``/pkg.Service/Method``."""
    key: str | None = None
    """Affinity key from ``x-powerbus-key`` (consistent hashing), if any."""
    exclude: frozenset[str] = frozenset()
    """Node ids not to pick (e.g. the one a retry just failed on), when others exist."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call to an endpoint ended, reported back so pickers can learn.

    >>> Outcome(ok=False, latency_s=0.002, code=StatusCode.UNAVAILABLE).node_failure
    True
    """

    ok: bool
    latency_s: float
    code: StatusCode = StatusCode.OK
    called: bool = True
    """False for a pick given back unused (:data:`UNUSED`): nothing is learned from it."""

    @property
    def node_failure(self) -> bool:
        """The node failed (see :data:`NODE_FAILURE_CODES`)."""
        return self.code in NODE_FAILURE_CODES


UNUSED = Outcome(ok=False, latency_s=0.0, code=StatusCode.CANCELLED, called=False)
"""Reported for an endpoint that was picked but not called (a fork that was not needed):
pickers stop counting it in flight and learn nothing from it."""


@runtime_checkable
class Picker(Protocol):
    """Chooses endpoints for one service.

    ``update`` is called whenever the set of usable endpoints changes; ``pick`` on every
    call (the hot path: keep it allocation-free where possible); ``report`` after every
    call with how it went. Every endpoint ``pick`` returns gets exactly one ``report``,
    which is how pickers that count calls in flight keep count.
    """

    def update(self, endpoints: Sequence[Endpoint]) -> None: ...

    def pick(self, request: PickRequest) -> Endpoint | None:
        """An endpoint for the call, or ``None`` when there is none to pick."""
        ...

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None: ...
