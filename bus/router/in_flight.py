"""A bound on the request bytes the router holds at once.

Each request is at most ``max_request_bytes`` (refused from its length prefix beyond), but
many of them at once still add up: the bus holds a unary request's bytes while it forwards
it, retries included. Past ``max_bytes_in_flight`` a new request is refused at once with
RESOURCE_EXHAUSTED, so a burst of large requests costs the bus a bounded amount of memory
instead of growing it until the machine swaps.

>>> budget = BytesInFlight(limit=100)
>>> with budget.hold(60): budget.held
60
>>> with budget.hold(60), budget.hold(60): pass  # doctest: +ELLIPSIS
Traceback (most recent call last):
powerbus.bus.kernel.errors.ResourceExhausted: the bus holds 60 bytes of requests ...
>>> budget.held
0
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes while the block runs, or raise :class:`ResourceExhausted`."""
        if self.held + size > self.limit:
            raise ResourceExhausted(
                f"the bus holds {self.held} bytes of requests being forwarded; this one's "
                f"{size} would pass max_bytes_in_flight ({self.limit}); retry later"
            )
        self.held += size
        try:
            yield
        finally:
            self.held -= size
