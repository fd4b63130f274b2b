"""What a balancer says when it cannot place a call, and what it shows operators."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["BalancerSnapshot", "NodeView", "Refusal", "RefusalReason"]


class RefusalReason(str, Enum):
    NO_NODE = "no_node"
    """The service has no live node."""
    NO_HEALTHY_NODE = "no_healthy_node"
    """Every node is ejected, failing health checks or otherwise out of rotation."""
    NODE_BREAKER_OPEN = "node_breaker_open"
    """Every node's circuit breaker is open."""
    SERVICE_BREAKER_OPEN = "service_breaker_open"
    """The service's circuit breaker is open."""
    RETRY_BUDGET_EXHAUSTED = "retry_budget_exhausted"
    """A retry was due, but the service's retry budget was spent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why a call was not placed; ``message`` names the service and the nodes.

    >>> Refusal(reason=RefusalReason.NO_NODE, service="s", message="s has no node").message
    's has no node'
    """

    reason: RefusalReason
    service: str
    message: str
    nodes: tuple[str, ...] = ()
    retry_after_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeView:
    """One node as its balancer sees it."""

    node_id: str
    address: str
    tier: str
    zone: str
    weight: int
    in_rotation: bool
    effective_weight: int
    """Weight in rotation (slow start lowers it); 0 when out of rotation."""
    healthy: bool
    """Passing active health checks."""
    ejected_for_s: float
    ejection_reason: str
    breaker: str
    breaker_retry_after_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancerSnapshot:
    """One service's balancer, for ``/api/balancers`` and ``powerbus policy show``."""

    service: str
    picker: str
    panic: bool
    standby_active: bool
    service_breaker: str
    active: int
    ejections_detected: int
    ejections_enforced: int
    nodes: tuple[NodeView, ...]
