"""One DL/T 645 request in flight on a line, driven by the line's own callbacks.

An :class:`Exchange` sends its request, matches the reply among whatever the line
delivers, and ends exactly once, through its ``done`` callback, with the reply frame or
the typed error saying why there is none (no reply, a bad checksum, a cut reply, garbage,
the meter's error reply, a lost connection). Nothing in it awaits.

Why callbacks: an exchange that awaits a future wakes a task for every reply, and on this
machine that doubled what an exchange costs the client (benchmarks/results/metering.json,
``floor``). A single request awaits one future around an exchange
(:meth:`~powerbus.adapters.dlt645.client.Dlt645Client.request`); a poll chains the next
exchange from the callback that ended the one before
(:class:`~powerbus.adapters.dlt645.line_poll.EnergyPoll`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from powerbus.adapters.dlt645.frame import Control, Corrupt, Frame, FrameDecoder, ReplyPattern
from powerbus.adapters.meters.errors import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    GatewayUnreachable,
    MeterError,
    MeterTimeout,
)
from powerbus.adapters.meters.line import TcpLine

__all__ = ["ERROR_BITS", "NO_DATA", "Exchange", "Outcome", "Request", "Watchdog"]

NO_DATA = 0x02
ERROR_BITS = {
    0x01: "other error",
    0x02: "no requested data",
    0x04: "password error / unauthorised",
    0x08: "baud rate cannot be changed",
    0x10: "annual time zones exceeded",
    0x20: "daily periods exceeded",
    0x40: "rates exceeded",
}

Outcome = Frame | MeterError
"""How an exchange ends: the meter's normal reply, or why there is none."""


@dataclass(frozen=True, slots=True)
class Request:
    """A request ready to send: its frame, its bytes on the wire and, for a read, the
    reply it expects (a poll sends the same ones every round, made once)."""

    frame: Frame
    wire: bytes
    pattern: ReplyPattern | None

    @classmethod
    def of(cls, frame: Frame) -> Request:
        """``frame`` prepared for sending."""
        pattern = ReplyPattern(frame) if frame.control == Control.READ else None
        return cls(frame, frame.encode(), pattern)


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

    __slots__ = ("_deadline", "_expire", "_handle", "_loop", "_timeout", "_when")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._deadline = 0.0
        self._expire: Callable[[], None] | None = None

    def arm(self, expire: Callable[[], None]) -> None:
        """Call ``expire`` once the timeout has passed, unless :meth:`disarm` comes first."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a client used from a new loop: the old timer is gone
            self._loop, self._handle = loop, None
        self._deadline, self._expire = loop.time() + self._timeout, expire
        if self._handle is None:
            self._when = self._deadline
            self._handle = loop.call_at(self._when, self._fire)

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
        if self._loop.time() >= self._deadline:
            self._expire = None
            expire()
        else:
            self._when = self._deadline
            self._handle = self._loop.call_at(self._when, self._fire)


class Exchange:
    """``request`` to ``meter`` on ``line`` (connected, and held by the caller).

    :meth:`start` sends it; ``done`` is called once, from the line's callbacks or the
    deadline's timer; :meth:`abandon` ends it without calling ``done`` (the caller gave up).
    """

    __slots__ = (
        "_corrupt",
        "_decoder",
        "_done",
        "_finished",
        "_garbage_before",
        "_line",
        "_meter",
        "_request",
        "_watchdog",
    )

    def __init__(
        self,
        line: TcpLine,
        decoder: FrameDecoder,
        watchdog: Watchdog,
        meter: str,
        request: Request,
        done: Callable[[Outcome], None],
    ) -> None:
        self._line = line
        self._decoder = decoder
        self._watchdog = watchdog
        self._meter = meter
        self._request = request
        self._done = done
        # A frame from our meter that fails its checksum is remembered, not fatal: it may
        # be a reply cut short with the real one right behind it (the decoder finds that
        # one). Only if nothing good comes before the deadline is it the reason we give.
        self._corrupt: list[Corrupt] = []
        self._garbage_before = 0
        self._finished = False

    def start(self) -> None:
        """Send the request and wait (in callbacks) for its answer or its deadline."""
        line, decoder = self._line, self._decoder
        decoder.clear()  # anything still buffered answers an earlier request
        self._garbage_before = decoder.discarded
        line.receiver, line.on_lost = self._receive, self._lost
        self._watchdog.arm(self._expire)
        line.write(self._request.wire)

    def abandon(self) -> None:
        """Stop waiting, without an outcome (idempotent; nothing if it has ended)."""
        self._end()

    def _receive(self, data: bytes) -> None:
        pattern = self._request.pattern
        if pattern is not None:
            reply = self._decoder.expected(data, pattern)
            if reply is not None:
                self._finish(reply)
                return
        request = self._request.frame
        for event in self._decoder.feed(data):
            if isinstance(event, Corrupt):
                if event.address == request.address:
                    self._corrupt.append(event)
            elif _answers(event, request):
                self._finish(self._accepted(event))
                return  # a next exchange may have started: the rest is not ours

    def _lost(self, exc: Exception | None) -> None:
        problem = f"connection lost: {exc!r}" if exc else "gateway closed the connection"
        self._finish(GatewayUnreachable(meter=self._meter, gateway=self._gateway, problem=problem))

    def _expire(self) -> None:
        self._finish(self._no_answer())

    def _end(self) -> bool:
        if self._finished:
            return False
        self._finished = True
        self._watchdog.disarm(self._expire)
        line = self._line
        if line.receiver == self._receive:
            line.receiver = line.on_lost = None
        return True

    def _finish(self, outcome: Outcome) -> None:
        if self._end():
            self._done(outcome)

    @property
    def _gateway(self) -> str:
        return str(self._line.gateway)

    def _accepted(self, reply: Frame) -> Outcome:
        if not reply.is_error:
            return reply
        code = reply.data[0] if reply.data else 0
        names = [name for bit, name in ERROR_BITS.items() if code & bit] or ["error"]
        return DeviceRejected(
            meter=self._meter, gateway=self._gateway, code=code, problem=", ".join(names)
        )

    def _no_answer(self) -> MeterError:
        """Why nothing answered by the deadline, from what the line did deliver."""
        decoder, meter, gateway = self._decoder, self._meter, self._gateway
        if self._corrupt:
            decoder.clear()
            return FrameError(
                meter=meter,
                gateway=gateway,
                reason=FrameProblem.CHECKSUM,
                problem=f"bad checksum or end in {self._corrupt[-1].raw.hex(' ')}",
            )
        if decoder.pending:
            decoder.clear()
            return FrameError(
                meter=meter,
                gateway=gateway,
                reason=FrameProblem.TRUNCATED,
                problem="reply cut short",
            )
        if decoder.discarded > self._garbage_before:
            return FrameError(
                meter=meter,
                gateway=gateway,
                reason=FrameProblem.GARBAGE,
                problem=f"{decoder.discarded - self._garbage_before} bytes that are no frame",
            )
        return MeterTimeout(meter=meter, gateway=gateway, problem="no reply before the deadline")


def _answers(reply: Frame, request: Frame) -> bool:
    """Whether ``reply`` is the answer to ``request``: same meter, a reply to the same
    function, and (for a normal reply) the same DI. Anything else is a late answer to an
    earlier request and is dropped."""
    if reply.address != request.address or not reply.is_reply:
        return False
    if (reply.control & 0x1F) != (request.control & 0x1F):
        return False
    if request.control != Control.READ:
        return True  # a control's normal reply carries no DI to match
    return reply.is_error or reply.data[:4] == request.data[:4]
