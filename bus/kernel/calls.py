"""What is recorded of one call, and who is told: the seam between traffic and monitoring.

The bus router, the SDK's proxyless client and the CORBA gateway each describe every call
they make as a :class:`CallRecord` and hand it to a :class:`CallObserver`. Monitoring
implements the observer; code that makes calls knows nothing else about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from powerbus.load_balancer.status import StatusCode

__all__ = ["LATENCY_BUCKETS_S", "CallObserver", "CallOrigin", "CallRecord", "NullObserver"]

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0,
    0.00001,
    0.00005,
    0.0001,
    0.0003,
    0.0006,
    0.0008,
    0.001,
    0.002,
    0.003,
    0.004,
    0.005,
    0.006,
    0.008,
    0.01,
    0.013,
    0.016,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.065,
    0.08,
    0.1,
    0.13,
    0.16,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.65,
    0.8,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
)
"""Latency histogram bounds in seconds: gRPC's standard per-call metrics (gRFC A66)."""


class CallOrigin(str, Enum):
    """How the call travelled."""

    ROUTED = "routed"
    """Through a bus router."""
    PROXYLESS = "proxyless"
    """Straight from an SDK client to a node, reported to the bus afterwards."""
    IIOP = "iiop"
    """From a CORBA client, through the CORBA gateway."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One finished call.

    >>> from powerbus.load_balancer import StatusCode
    >>> CallRecord(service="powerbus.echo.v1.Echo", method="Echo", node_id="echo-1",
    ...            caller="billing-1", code=StatusCode.OK, latency_s=0.0012,
    ...            bytes_in=12, bytes_out=30).ok
    True
    """

    service: str
    method: str
    node_id: str
    """The node that served it; empty when none was picked."""
    caller: str
    """``x-powerbus-caller``, or the peer address when the caller did not say."""
    code: StatusCode
    latency_s: float
    bytes_in: int
    """Request bytes (all messages of a client stream)."""
    bytes_out: int
    """Reply bytes (all messages of a server stream)."""
    origin: CallOrigin = CallOrigin.ROUTED
    reached: bool = True
    """False when the call provably never reached the node (no connection, refused): the
    code is the bus's, not the node's. A node answering UNAVAILABLE itself was reached."""
    last: bool = True
    """Whether this attempt's outcome is the call's. An attempt that was retried elsewhere,
    or lost a hedge, is recorded with ``last=False``: counted as an attempt, not a call."""

    @property
    def ok(self) -> bool:
        return self.code == StatusCode.OK


class CallObserver(Protocol):
    """Told about every call; must be cheap, never block, and never raise."""

    def call_started(self, service: str, method: str, node_id: str) -> None:
        """A call was sent to ``node_id`` (counts calls in flight)."""

    def call_finished(self, record: CallRecord) -> None:
        """The call ended, however it ended."""


class NullObserver:
    """Records nothing."""

    def call_started(self, service: str, method: str, node_id: str) -> None:
        pass

    def call_finished(self, record: CallRecord) -> None:
        pass
