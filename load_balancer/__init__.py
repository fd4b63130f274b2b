"""Load balancing as pure logic: endpoints, pickers, health, ejection, breakers, retries.

No module here imports a network library, so the bus router and the SDK's proxyless
client share the same code, and tests drive it directly (clocks and randomness are
injected).

>>> from powerbus.load_balancer import Balancer, Endpoint, PickRequest
>>> balancer = Balancer("powerbus.echo.v1.Echo")
>>> balancer.update([Endpoint("echo-1", "127.0.0.1:7001")])
>>> balancer.pick(PickRequest()).node_id
'echo-1'
"""

from powerbus.load_balancer.balancer import Balancer
from powerbus.load_balancer.breaker import BreakerSettings, BreakerState, CircuitBreaker
from powerbus.load_balancer.endpoint import Endpoint, Tier
from powerbus.load_balancer.executor import Attempt, CallExecutor, CallPolicy, Send
from powerbus.load_balancer.lane import Lane
from powerbus.load_balancer.least_request import LeastRequestPicker
from powerbus.load_balancer.outlier import OutlierDetector, OutlierSettings
from powerbus.load_balancer.peak_ewma import PeakEwmaPicker, PeakEwmaSettings
from powerbus.load_balancer.picker import UNUSED, Outcome, Picker, PickRequest
from powerbus.load_balancer.pickers import make_picker
from powerbus.load_balancer.refusal import BalancerSnapshot, NodeView, Refusal, RefusalReason
from powerbus.load_balancer.retry import FaultTolerance, HedgeSettings, RetryBudget, RetrySettings
from powerbus.load_balancer.ring_hash import RingHashPicker, RingHashSettings, hash64
from powerbus.load_balancer.round_robin import RoundRobinPicker
from powerbus.load_balancer.settings import (
    BalancerSettings,
    HealthCheckSettings,
    PickerKind,
    PrioritySettings,
    SlowStartSettings,
    ZoneSettings,
)
from powerbus.load_balancer.status import NODE_FAILURE_CODES, StatusCode
from powerbus.load_balancer.weighted import SmoothRoundRobinPicker, WeightedRandomPicker

__all__ = [
    "NODE_FAILURE_CODES",
    "UNUSED",
    "Attempt",
    "Balancer",
    "BalancerSettings",
    "BalancerSnapshot",
    "BreakerSettings",
    "BreakerState",
    "CallExecutor",
    "CallPolicy",
    "CircuitBreaker",
    "Endpoint",
    "FaultTolerance",
    "HealthCheckSettings",
    "HedgeSettings",
    "Lane",
    "LeastRequestPicker",
    "NodeView",
    "Outcome",
    "OutlierDetector",
    "OutlierSettings",
    "PeakEwmaPicker",
    "PeakEwmaSettings",
    "PickRequest",
    "Picker",
    "PickerKind",
    "PrioritySettings",
    "Refusal",
    "RefusalReason",
    "RetryBudget",
    "RetrySettings",
    "RingHashPicker",
    "RingHashSettings",
    "RoundRobinPicker",
    "Send",
    "SlowStartSettings",
    "SmoothRoundRobinPicker",
    "StatusCode",
    "Tier",
    "WeightedRandomPicker",
    "ZoneSettings",
    "hash64",
    "make_picker",
]
