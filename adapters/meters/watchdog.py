"""Deadlines of the requests in flight on lines: one :class:`Watchdog` per line, and one
:class:`DeadlineTimer` (one loop timer) for the watchdogs of many lines.

Why not a timer per request: scheduling and cancelling one for every exchange cost the
client more CPU than the rest of the exchange on a mostly idle loop (a bare exchange
23 µs, with a timer each 43 µs, on this machine). Why not a timer per line either: a
line's deadline keeps moving ahead of its timer, which wakes to move itself about once a
request timeout, and an idle process's every wake costs about what a reply does; the
lines of an :class:`~powerbus.adapters.meters.acquisition.Acquisition` share one timer,
which wakes about once a timeout for all of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["DeadlineTimer", "Watchdog"]


class DeadlineTimer:
    """One loop timer for the deadlines of the watchdogs that use it.

    It is set for the earliest deadline it knows. When it fires it expires the
    watchdogs whose deadline has passed and sets itself for the earliest of the rest; a
    deadline that moved later since (the next request on a line) only moves the timer.
    """

    __slots__ = ("_handle", "_loop", "_watched", "_when")

    def __init__(self) -> None:
        self._watched: set[Watchdog] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0

    def watch(self, watchdog: Watchdog, loop: asyncio.AbstractEventLoop) -> None:
        """Expire ``watchdog`` at its deadline (or later, if it moves)."""
        if loop is not self._loop:  # used from a new loop: the old timer is gone
            self._loop, self._handle = loop, None
        self._watched.add(watchdog)
        if self._handle is None or watchdog.deadline < self._when:
            self._set(loop, watchdog.deadline)

    def forget(self, watchdog: Watchdog) -> None:
        """Stop watching ``watchdog`` (the timer stays, and finds nothing for it)."""
        self._watched.discard(watchdog)

    def close(self) -> None:
        """Cancel the timer and forget every watchdog."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._watched.clear()

    def _set(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        due = [w for w in self._watched if w.deadline <= now]
        for watchdog in due:
            self._watched.discard(watchdog)
            watchdog.expired()  # may arm watchdogs again, which sets the timer
        if self._watched:
            earliest = min(w.deadline for w in self._watched)
            if self._handle is None or earliest < self._when:
                self._set(loop, earliest)


class Watchdog:
    """The deadline of a line's request in flight, kept by a :class:`DeadlineTimer`
    (its own, or one shared with other lines). Every request on the line has the same
    ``timeout`` (seconds), so a new deadline is never earlier than the last one."""

    __slots__ = ("_expire", "_own_timer", "_timer", "clock", "deadline", "timeout")

    def __init__(self, timeout: float, *, timer: DeadlineTimer | None = None) -> None:
        self.timeout = timeout
        """Seconds from :meth:`arm` to the deadline."""
        self.deadline = 0.0
        """When the armed ``expire`` is due, in :attr:`clock` time. While one ``expire``
        stays armed, setting ``deadline = clock() + timeout`` moves it for a next request
        without a call (a poll does that for every request)."""
        self.clock: Callable[[], float] = time.monotonic
        """The running loop's clock (``loop.time``), once armed."""
        self._own_timer = timer is None
        self._timer = timer or DeadlineTimer()
        self._expire: Callable[[], None] | None = None

    def arm(self, expire: Callable[[], None]) -> None:
        """Call ``expire`` once the timeout has passed, unless :meth:`disarm` comes first."""
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        self.deadline, self._expire = loop.time() + self.timeout, expire
        self._timer.watch(self, loop)

    def take(self, expire: Callable[[], None]) -> None:
        """Call ``expire`` instead at the deadline armed (an exchange taking over the
        request a poll sent keeps the request's deadline)."""
        self._expire = expire

    def disarm(self, expire: Callable[[], None]) -> None:
        """Forget ``expire`` if it is the one armed."""
        if self._expire == expire:
            self._expire = None
            self._timer.forget(self)

    def close(self) -> None:
        """Forget what is armed (the line is closed); a timer of its own is cancelled."""
        self._expire = None
        self._timer.forget(self)
        if self._own_timer:
            self._timer.close()

    def expired(self) -> None:
        """The deadline passed (called by the timer): call the armed ``expire``, once."""
        expire, self._expire = self._expire, None
        if expire is not None:
            expire()
