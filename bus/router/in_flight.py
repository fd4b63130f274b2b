"""A bound on the request bytes the router holds at once.

Each request is at most ``max_request_bytes`` (refused from its length prefix beyond), but
many of them at once still add up: the bus holds a unary request's bytes while it forwards
it, retries included. Past ``max_bytes_in_flight`` a new request is refused at once with
RESOURCE_EXHAUSTED, so a burst of large requests costs the bus a bounded amount of memory
instead of growing it until the machine swaps.

>>> budget = BytesInFlight(limit=100)
>>> budget.take(60); budget.held
60
>>> budget.take(60)  # doctest: +ELLIPSIS
Traceback (most recent call last):
powerbus.bus.kernel.errors.ResourceExhausted: the bus holds 60 bytes of requests ...
>>> budget.release(60); budget.held
0
"""

from __future__ import annotations

from powerbus.bus.kernel.errors import ConfigError, ResourceExhausted
from powerbus.bus.kernel.limits import DEFAULT_MAX_BYTES_IN_FLIGHT

__all__ = ["BytesInFlight"]


class BytesInFlight:
    """Counts the bytes of requests being forwarded; refuses past ``limit``.

    The router runs on one event loop, so the count needs no lock.
    """

    def __init__(self, limit: int = DEFAULT_MAX_BYTES_IN_FLIGHT) -> None:
        if limit < 1:
            raise ConfigError(f"max_bytes_in_flight: must be at least 1, got {limit}")
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> None:
        """Count ``size`` bytes as held, or raise :class:`ResourceExhausted` (nothing
        taken); every successful take is paired with a :meth:`release`."""
        if self.held + size > self.limit:
            raise ResourceExhausted(
                f"the bus holds {self.held} bytes of requests being forwarded; this one's "
                f"{size} would pass max_bytes_in_flight ({self.limit}); retry later"
            )
        self.held += size

    def release(self, size: int) -> None:
        """Give back what a :meth:`take` counted."""
        self.held -= size
