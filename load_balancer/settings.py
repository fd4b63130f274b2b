"""Settings of a service's balancer: the picker and everything around it.

Each is a frozen dataclass with the defaults powerbus ships; ``powerbus.bus.policy``
builds them from the configuration file and ``powerbus policy set``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from powerbus.load_balancer.breaker import BreakerSettings
from powerbus.load_balancer.outlier import OutlierSettings
from powerbus.load_balancer.peak_ewma import PeakEwmaSettings
from powerbus.load_balancer.ring_hash import RingHashSettings
from powerbus.load_balancer.status import NODE_FAILURE_CODES, StatusCode

__all__ = [
    "BalancerSettings",
    "HealthCheckSettings",
    "PickerKind",
    "PrioritySettings",
    "SlowStartSettings",
    "ZoneSettings",
]


class PickerKind(str, Enum):
    """Which algorithm picks among the usable nodes."""

    ROUND_ROBIN = "round_robin"
    """Smooth weighted round robin (plain round robin when weights are equal)."""
    RANDOM = "random"
    """Weighted random."""
    LEAST_REQUEST = "least_request"
    """Power of two choices over calls in flight per weight."""
    PEAK_EWMA = "peak_ewma"
    """Power of two choices over peak-EWMA latency x calls in flight per weight."""
    RING_HASH = "ring_hash"
    """Consistent hashing on ``x-powerbus-key`` (least request for calls without one)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthCheckSettings:
    """Active ``grpc.health.v1`` checks of every node of the service."""

    enabled: bool = True
    interval_s: float = 5.0
    timeout_s: float = 1.0
    healthy_threshold: int = 2
    """Passing checks in a row that bring an unhealthy node back."""
    unhealthy_threshold: int = 2
    """Failing checks in a row that take a node out."""
    jitter: float = 0.2
    """Each wait is the interval ± this share of it, so checks of many nodes spread out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowStartSettings:
    """New nodes ramp up: weight x max(min_weight, (age/window)^(1/aggression))."""

    window_s: float = 0.0
    """0 turns slow start off."""
    aggression: float = 1.0
    min_weight: float = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class PrioritySettings:
    """Hot standby: STANDBY nodes serve only while too few PRIMARY nodes are usable."""

    standby_threshold: float = 0.7
    """Below this usable share of the primaries, standbys join (Envoy's overprovisioning
    factor 1.4 gives about 0.72)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneSettings:
    """Prefer nodes in the caller's zone while enough of them are usable."""

    prefer_local: bool = True
    min_healthy: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancerSettings:
    """Everything a :class:`~powerbus.load_balancer.balancer.Balancer` needs.

    >>> BalancerSettings().picker.value
    'round_robin'
    """

    picker: PickerKind = PickerKind.ROUND_ROBIN
    ring_hash: RingHashSettings = field(default_factory=RingHashSettings)
    peak_ewma: PeakEwmaSettings = field(default_factory=PeakEwmaSettings)
    slow_start: SlowStartSettings = field(default_factory=SlowStartSettings)
    priority: PrioritySettings = field(default_factory=PrioritySettings)
    zone: ZoneSettings = field(default_factory=ZoneSettings)
    panic_threshold: float = 0.5
    """Below this usable share, health and ejection are ignored (Envoy's panic mode): better
    to spread load over possibly-bad nodes than to crush the few left. 0 turns it off."""
    outlier: OutlierSettings = field(default_factory=OutlierSettings)
    node_breaker: BreakerSettings = field(default_factory=BreakerSettings)
    service_breaker: BreakerSettings = field(
        default_factory=lambda: BreakerSettings(
            window=100, min_calls=20, failure_ratio=0.9, open_s=2.0, max_open_s=30.0, probes=5
        )
    )
    health: HealthCheckSettings = field(default_factory=HealthCheckSettings)
    failure_codes: frozenset[StatusCode] = NODE_FAILURE_CODES
    """Status codes counted as the node's failure by outlier ejection and breakers."""
