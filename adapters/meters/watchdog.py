"""One deadline timer per line, shared by the exchanges that follow one another on it
(the DL/T 645 and Modbus lines' callback-driven exchanges)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Watchdog"]


class Watchdog:
    """The deadline of a line's exchange in flight, on one timer that outlives exchanges.

    Why not a timer per exchange: scheduling and cancelling one for every exchange cost
    the client more CPU than the rest of the exchange on a mostly idle loop (a bare
    exchange 23 µs, with a timer each 43 µs, on this machine). This timer is scheduled
    for the earliest deadline it knows; when it fires before the current exchange's
    deadline (that exchange started after it was scheduled), it moves itself there. A
    line of back-to-back exchanges therefore wakes it about once a request timeout. Every
    exchange has the same ``timeout`` (seconds), so a new deadline is never earlier than
    the one the timer is set for.
    """

    __slots__ = ("_expire", "_handle", "_loop", "_when", "clock", "deadline", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        """Seconds from :meth:`arm` to the deadline."""
        self.deadline = 0.0
        """When the armed ``expire`` is due, in :attr:`clock` time. While one ``expire``
        stays armed, setting ``deadline = clock() + timeout`` moves it for a next request
        without a call (a poll does that for every request)."""
        self.clock: Callable[[], float] = time.monotonic
        """The running loop's clock (``loop.time``), once armed."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._expire: Callable[[], None] | None = None

    def arm(self, expire: Callable[[], None]) -> None:
        """Call ``expire`` once the timeout has passed, unless :meth:`disarm` comes first."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a client used from a new loop: the old timer is gone
            self._loop, self._handle, self.clock = loop, None, loop.time
        self.deadline, self._expire = loop.time() + self.timeout, expire
        if self._handle is None:
            self._when = self.deadline
            self._handle = loop.call_at(self._when, self._fire)

    def take(self, expire: Callable[[], None]) -> None:
        """Call ``expire`` instead at the deadline armed (an exchange taking over the
        request a poll sent keeps the request's deadline)."""
        self._expire = expire

    def disarm(self, expire: Callable[[], None]) -> None:
        """Forget ``expire`` if it is the one armed (the timer stays, and finds nothing)."""
        if self._expire == expire:
            self._expire = None

    def close(self) -> None:
        """Cancel the timer (the line is closed)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._expire = None

    def _fire(self) -> None:
        self._handle = None
        expire = self._expire
        if expire is None or self._loop is None:
            return
        if self._loop.time() >= self.deadline:
            self._expire = None
            expire()
        else:
            self._when = self.deadline
            self._handle = self._loop.call_at(self._when, self._fire)
