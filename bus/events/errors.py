"""The event store's one error of its own; the rest are the kernel's.

::

    PowerbusError
    └── ReplayGone      OUT_OF_RANGE: the asked sequences were pruned by retention
"""

from __future__ import annotations

from powerbus.bus.kernel.errors import PowerbusError
from powerbus.load_balancer.status import StatusCode

__all__ = ["ReplayGone"]


class ReplayGone(PowerbusError):
    """Replay asked for sequences older than the store keeps; they cannot come back."""

    status = StatusCode.OUT_OF_RANGE
