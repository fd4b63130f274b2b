"""What every callback-driven exchange and poll on a line shares, whatever the protocol.

An exchange sends one request and ends exactly once, through its ``done`` callback, with
the reply or the typed error saying why there is none; nothing in it awaits. A poll
sends a line's requests one after another, each from the callback that got the reply
before. Why: an exchange that awaits a future wakes a task for every reply, and a timer
per exchange costs more than the rest of it on a mostly idle loop (docs/metering.md,
Benchmark). The protocols' own parts are in ``dlt645/`` and ``modbus/``.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from powerbus.adapters.meters.errors import GatewayUnreachable, MeterError
from powerbus.adapters.meters.line import TcpLine
from powerbus.adapters.meters.watchdog import Watchdog

__all__ = [
    "Answer",
    "Job",
    "LineExchange",
    "LinePoll",
    "PollRequest",
    "Polled",
    "outcome_of",
    "resolver",
]

T = TypeVar("T")


class LineExchange(ABC, Generic[T]):
    """One request to ``meter`` on ``line`` (connected, and held by the caller); ``done``
    gets a ``T`` or the error.

    :meth:`start` sends the request (the protocol's :attr:`wire`); :meth:`adopt` takes
    over one a poll has sent already, keeping its deadline. A protocol's exchange
    implements :meth:`receive` and :meth:`expire`, and :meth:`_prepare` if it keeps state
    across exchanges; :meth:`abandon` ends it without calling ``done`` (the caller gave up).
    """

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

    @property
    @abstractmethod
    def wire(self) -> bytes:
        """The request's bytes on the wire."""

    def start(self) -> None:
        """Send the request and wait (in callbacks) for its answer or its deadline."""
        self._prepare()
        self._listen()
        self._watchdog.arm(self.expire)
        self._line.write(self.wire)

    def adopt(self) -> None:
        """Wait for the answer to the request a poll sent, by the deadline it armed."""
        self._prepare()
        self._listen()
        self._watchdog.take(self.expire)

    def abandon(self) -> None:
        """Stop waiting, without an outcome (idempotent; nothing if it has ended)."""
        self._end()

    @abstractmethod
    def receive(self, data: bytes) -> None:
        """Bytes from the line (the line's receiver while the exchange waits)."""

    @abstractmethod
    def expire(self) -> None:
        """The deadline passed with no answer."""

    def _prepare(self) -> None:
        """Before the request goes out (or is adopted): forget state of earlier ones."""

    def _listen(self) -> None:
        line = self._line
        line.receiver, line.on_lost = self.receive, self._lost

    def _lost(self, exc: Exception | None) -> None:
        self._finish(connection_lost(self._meter, self._line, exc))

    def _end(self) -> bool:
        if self._finished:
            return False
        self._finished = True
        self._watchdog.disarm(self.expire)
        line = self._line
        if line.receiver == self.receive:
            line.receiver = line.on_lost = None
        return True

    def _finish(self, outcome: T | MeterError) -> None:
        if self._end():
            self._done(outcome)

    @property
    def _gateway(self) -> str:
        return str(self._line.gateway)


def connection_lost(meter: str, line: TcpLine, exc: Exception | None) -> GatewayUnreachable:
    """The error of a request whose connection went while it waited."""
    problem = f"connection lost: {exc!r}" if exc else "gateway closed the connection"
    return GatewayUnreachable(meter=meter, gateway=str(line.gateway), problem=problem)


class PollRequest(Protocol):
    """A request a poll sends as it is, and how it knows the reply it expects."""

    @property
    def wire(self) -> bytes:
        """The request's bytes on the wire."""
        ...

    def match(self, data: bytes) -> bytes | None:
        """The reply's payload when ``data`` is exactly the normal reply, whole; else None."""
        ...


class Job(NamedTuple):
    """What a poll reads in one go: one meter's requests (or one pulse terminal's, for
    all its channels); ``meter`` is named in the job's errors."""

    meter: str
    requests: tuple[PollRequest, ...]


Answer = float | MeterError
"""How a job ended: the time (``time.time()``) of its last reply, its replies' payloads
being next in :attr:`Polled.payloads`; or the error that ended it."""


class Polled(NamedTuple):
    """What a poll got: an answer per job done, in order, and the payloads of the jobs
    that succeeded, one per request, in order."""

    answers: list[Answer]
    payloads: list[bytes]


class LinePoll(ABC):
    """Sends ``jobs``' requests on ``line`` (held and connected by the caller) one after
    another, each from the callback that got the reply before; ``done`` gets what it got.

    A reply that comes whole and is exactly the one expected (:meth:`PollRequest.match`,
    a few comparisons in C) is kept as its raw payload, decoded by the caller when the
    poll ends: each reply wakes an idle process on cold caches, so the less Python runs
    per reply, the less CPU a reading costs (docs/metering.md, Benchmark). For the same
    reason the poll takes the connection's bytes straight (:meth:`TcpLine.direct`) and
    moves the watchdog's deadline by assignment. Anything else, and the deadline, go to
    the protocol's own exchange (:meth:`_adopt`), which resynchronises, matches and
    types the error as it does for a single request.

    A failing job gets its error and the poll goes on with the next; the poll ends early,
    with what it has, when the connection is gone (the caller reconnects for the rest) or
    another request waits for the line (an on-demand read is not kept behind a whole
    line's poll).
    """

    __slots__ = (
        "_answers",
        "_done",
        "_ended",
        "_exchange",
        "_first",
        "_job",
        "_jobs",
        "_line",
        "_on_expire",
        "_payloads",
        "_request",
        "_step",
        "_watchdog",
        "_write",
    )

    def __init__(
        self,
        line: TcpLine,
        watchdog: Watchdog,
        jobs: Sequence[Job],
        done: Callable[[Polled], None],
    ) -> None:
        self._line = line
        self._watchdog = watchdog
        self._jobs = jobs
        self._done = done
        self._answers: list[Answer] = []
        self._payloads: list[bytes] = []
        self._job = self._step = self._first = 0
        self._request: PollRequest | None = None
        self._exchange: LineExchange[Any] | None = None
        self._ended = False
        self._write: Callable[[bytes], None] = line.write
        self._on_expire = self._expire  # bound once: armed for every request

    def start(self) -> None:
        """Send the first request."""
        if not self._jobs:
            self._finish()
            return
        self._write = self._line.writer()
        self._listen()
        self._send(self._jobs[0].requests[0])

    def abandon(self) -> None:
        """Stop where it is, without calling ``done`` (the caller gave up)."""
        if not self._ended:
            self._ended = True
            self._release()
        if self._exchange is not None:
            self._exchange.abandon()

    @abstractmethod
    def _adopt(self, request: Any, meter: str, done: Callable[[Any], None]) -> LineExchange[Any]:
        """The protocol's exchange of ``request``, sent already, adopted."""

    @abstractmethod
    def _payload(self, reply: Any) -> bytes:
        """What an exchange's reply is as a payload :meth:`PollRequest.match` gives."""

    def _listen(self) -> None:
        """Take the line's callbacks and the watchdog: from here until the poll ends or
        hands a request to an exchange, its deadline is the poll's (:meth:`_send`)."""
        line = self._line
        line.receiver, line.on_lost = self._receive, self._lost
        if line.connected:
            line.direct(self._receive)
        self._watchdog.arm(self._on_expire)

    def _send(self, request: PollRequest) -> None:
        """Send ``request``; the watchdog is armed for the poll (the deadline moves)."""
        self._request = request
        watchdog = self._watchdog
        watchdog.deadline = watchdog.clock() + watchdog.timeout
        self._write(request.wire)

    def _receive(self, data: bytes) -> None:
        request = self._request
        assert request is not None
        payload = request.match(data)
        if payload is None:
            self._line.indirect()  # the exchange takes the line's bytes from here
            self._exchange = self._adopt(request, self._jobs[self._job].meter, self._exchanged)
            self._exchange.receive(data)
        else:
            self._answered(payload)

    def _answered(self, payload: bytes) -> None:
        self._payloads.append(payload)
        requests = self._jobs[self._job].requests
        step = self._step + 1
        if step < len(requests):
            self._step = step
            # _send, inlined: this runs for nearly every reply
            self._request = request = requests[step]
            watchdog = self._watchdog
            watchdog.deadline = watchdog.clock() + watchdog.timeout
            self._write(request.wire)
        else:
            self._job_done(time.time())

    def _expire(self) -> None:
        self._line.indirect()
        self._exchange = self._adopt(self._request, self._jobs[self._job].meter, self._exchanged)
        self._exchange.expire()

    def _lost(self, exc: Exception | None) -> None:
        self._failed(connection_lost(self._jobs[self._job].meter, self._line, exc))

    def _exchanged(self, outcome: Any) -> None:
        self._exchange = None
        self._listen()  # the exchange had the line's callbacks
        if isinstance(outcome, MeterError):
            self._failed(outcome)
        else:
            self._answered(self._payload(outcome))

    def _failed(self, error: MeterError) -> None:
        del self._payloads[self._first :]
        self._job_done(error)

    def _job_done(self, answer: Answer) -> None:
        self._answers.append(answer)
        self._job = job = self._job + 1
        self._step = 0
        self._first = len(self._payloads)
        line = self._line
        if job == len(self._jobs) or line.waiting or not line.connected:
            self._finish()
        else:
            self._send(self._jobs[job].requests[0])

    def _finish(self) -> None:
        self._ended = True
        self._release()
        self._done(Polled(self._answers, self._payloads))

    def _release(self) -> None:
        self._watchdog.disarm(self._on_expire)
        line = self._line
        if line.receiver == self._receive:
            line.indirect()
            line.receiver = line.on_lost = None


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
