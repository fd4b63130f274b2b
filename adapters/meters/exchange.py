"""What every callback-driven exchange and poll on a line shares, whatever the protocol.

An exchange sends one request and ends exactly once, through its ``done`` callback, with
the reply or the typed error saying why there is none; nothing in it awaits. A poll
chains exchanges, each started from the callback that ended the one before. Why: an
exchange that awaits a future wakes a task for every reply, and a timer per exchange
costs more than the rest of it on a mostly idle loop (docs/metering.md, Benchmark).
The protocols' own parts are in ``dlt645/exchange.py`` and ``modbus/exchange.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from powerbus.adapters.meters.errors import GatewayUnreachable, MeterError
from powerbus.adapters.meters.line import TcpLine
from powerbus.adapters.meters.watchdog import Watchdog

__all__ = ["LineExchange", "LinePoll", "outcome_of", "resolver"]

T = TypeVar("T")


class LineExchange(Generic[T]):
    """One request to ``meter`` on ``line`` (connected, and held by the caller); ``done``
    gets a ``T`` or the error. A protocol's exchange sends its request after
    :meth:`_listen` and implements :meth:`_receive` and :meth:`_expire`;
    :meth:`abandon` ends it without calling ``done`` (the caller gave up)."""

    __slots__ = ("_done", "_finished", "_line", "_meter", "_watchdog")

    def __init__(
        self,
        line: TcpLine,
        watchdog: Watchdog,
        meter: str,
        done: Callable[[T | MeterError], None],
    ) -> None:
        self._line = line
        self._watchdog = watchdog
        self._meter = meter
        self._done = done
        self._finished = False

    def abandon(self) -> None:
        """Stop waiting, without an outcome (idempotent; nothing if it has ended)."""
        self._end()

    def _listen(self) -> None:
        """Take the line's callbacks and arm the deadline (before the request goes out)."""
        line = self._line
        line.receiver, line.on_lost = self._receive, self._lost
        self._watchdog.arm(self._expire)

    def _receive(self, data: bytes) -> None:
        raise NotImplementedError

    def _expire(self) -> None:
        raise NotImplementedError

    def _lost(self, exc: Exception | None) -> None:
        problem = f"connection lost: {exc!r}" if exc else "gateway closed the connection"
        self._finish(GatewayUnreachable(meter=self._meter, gateway=self._gateway, problem=problem))

    def _end(self) -> bool:
        if self._finished:
            return False
        self._finished = True
        self._watchdog.disarm(self._expire)
        line = self._line
        if line.receiver == self._receive:
            line.receiver = line.on_lost = None
        return True

    def _finish(self, outcome: T | MeterError) -> None:
        if self._end():
            self._done(outcome)

    @property
    def _gateway(self) -> str:
        return str(self._line.gateway)


class LinePoll:
    """The start and stop of a poll chaining exchanges on ``line``: a protocol's poll
    implements :meth:`_next`, which starts the next exchange or, when :meth:`_ends`
    says so, ends the poll."""

    __slots__ = ("_ended", "_exchange", "_poll_line")

    def __init__(self, line: TcpLine) -> None:
        self._poll_line = line
        self._exchange: LineExchange[Any] | None = None
        self._ended = False

    def start(self) -> None:
        """Begin with the first meter."""
        self._next()

    def abandon(self) -> None:
        """Stop where it is, without calling ``done`` (the caller gave up)."""
        self._ended = True
        if self._exchange is not None:
            self._exchange.abandon()

    def _next(self) -> None:
        raise NotImplementedError

    def _ends(self, *, finished: bool, progressed: bool) -> bool:
        """Whether the poll ends here: all ``finished``, or, once it has ``progressed``,
        another request waits for the line or the connection is gone (the caller takes
        the line again and reconnects for the rest)."""
        line = self._poll_line
        if finished or (progressed and (line.waiting or not line.connected)):
            self._ended = True
            return True
        return False


def resolver(future: asyncio.Future[T]) -> Callable[[T], None]:
    """``future.set_result``, unless the waiter gave up (a cancelled future): the ``done``
    of an exchange or poll that one coroutine awaits."""

    def resolve(result: T) -> None:
        if not future.done():
            future.set_result(result)

    return resolve


async def outcome_of(begin: Callable[[Callable[[T | MeterError], None]], LineExchange[T]]) -> T:
    """Start an exchange with ``begin(done)`` and await what it ends with; raises its
    MeterError. The line must be held and connected."""
    answer: asyncio.Future[T | MeterError] = asyncio.get_running_loop().create_future()
    exchange = begin(resolver(answer))
    try:
        outcome = await answer
    finally:
        exchange.abandon()
    if isinstance(outcome, MeterError):
        raise outcome
    return outcome
