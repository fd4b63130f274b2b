"""One DL/T 645 request in flight on a line, driven by the line's own callbacks.

An :class:`Exchange` sends its request, matches the reply among whatever the line
delivers, and ends exactly once, through its ``done`` callback, with the reply frame or
the typed error saying why there is none (no reply, a bad checksum, a cut reply, garbage,
the meter's error reply, a lost connection). Nothing in it awaits.

Why callbacks: :mod:`powerbus.adapters.meters.exchange`. A single request awaits one
around an exchange (:meth:`~powerbus.adapters.dlt645.client.Dlt645Client.request`); a poll
chains the next exchange from the callback that ended the one before
(:class:`~powerbus.adapters.dlt645.line_poll.EnergyPoll`).
"""

from __future__ import annotations

from collections.abc import Callable

from powerbus.adapters.dlt645.frame import Control, Corrupt, Frame, FrameDecoder, ReplyPattern
from powerbus.adapters.meters.errors import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    MeterError,
    MeterTimeout,
)
from powerbus.adapters.meters.exchange import LineExchange
from powerbus.adapters.meters.line import TcpLine
from powerbus.adapters.meters.watchdog import Watchdog

__all__ = ["ERROR_BITS", "NO_DATA", "Exchange", "Outcome", "Request"]

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


class Request:
    """A request ready to send: its frame, its bytes on the wire and, for a read, the
    reply it expects (a poll sends the same ones every round, made once); a
    :class:`~powerbus.adapters.meters.exchange.PollRequest`."""

    __slots__ = ("frame", "match", "pattern", "wire")

    def __init__(self, frame: Frame, *, size: int | None = None) -> None:
        self.frame = frame
        self.wire = frame.encode()
        self.pattern = ReplyPattern(frame, size=size) if frame.control == Control.READ else None
        # the pattern's own match, bound once: a poll calls it for every reply
        self.match: Callable[[bytes], bytes | None] = (
            _no_match if self.pattern is None else self.pattern.match
        )
        """The reply's data after the DI when ``data`` is exactly the normal reply."""

    @classmethod
    def of(cls, frame: Frame, *, size: int | None = None) -> Request:
        """``frame`` prepared for sending; ``size``, when known, is the length of the
        data after the DI in the normal reply (a read of one fixed-size item)."""
        return cls(frame, size=size)


def _no_match(data: bytes) -> None:
    return None


class Exchange(LineExchange[Frame]):
    """``request`` to ``meter`` on ``line`` (connected, and held by the caller).

    :meth:`start` sends it (or :meth:`adopt` takes it over from a poll); ``done`` is
    called once, from the line's callbacks or the deadline's timer; :meth:`abandon` ends
    it without calling ``done`` (the caller gave up).
    """

    __slots__ = ("_corrupt", "_decoder", "_garbage_before", "_request")

    def __init__(
        self,
        line: TcpLine,
        decoder: FrameDecoder,
        watchdog: Watchdog,
        meter: str,
        request: Request,
        done: Callable[[Outcome], None],
    ) -> None:
        super().__init__(line, watchdog, meter, done)
        self._decoder = decoder
        self._request = request
        # A frame from our meter that fails its checksum is remembered, not fatal: it may
        # be a reply cut short with the real one right behind it (the decoder finds that
        # one). Only if nothing good comes before the deadline is it the reason we give.
        self._corrupt: list[Corrupt] = []
        self._garbage_before = 0

    @property
    def wire(self) -> bytes:
        """The request's bytes on the wire."""
        return self._request.wire

    def _prepare(self) -> None:
        decoder = self._decoder
        decoder.clear()  # anything still buffered answers an earlier request
        self._garbage_before = decoder.discarded

    def receive(self, data: bytes) -> None:
        """Bytes from the line: the reply, or what the decoder makes of them."""
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

    def expire(self) -> None:
        """No reply by the deadline: why, from what the line delivered."""
        self._finish(self._no_answer())

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
