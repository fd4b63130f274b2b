"""A server of the bank protocol: accepts connections, answers each request in order.

Both sides of a 银电联网 link run one: the utility's bank node for the bank's queries,
payments and reversals, the bank (or its simulator) for status queries and statement
downloads. What each request does is the ``handler``'s business (:mod:`..service`).

A malformed message never ends the server or loses what was accepted before it:

* bad MAC, GBK garbage, a bad or truncated field inside a well-framed message: the
  request is answered with ``9002``/``9001`` and the connection carries on;
* a bad length header: the stream has no trustworthy boundary left, so the connection is
  closed after the replies to every earlier frame were written;
* a stream that ends inside a frame: logged, the earlier frames were already answered.

Every failure is counted in :attr:`ProtocolServer.stats` by error class.

>>> # async with ProtocolServer(codec=codec, handler=dispatcher) as server:
>>> #     server.address   # HostPort('127.0.0.1', 40123)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from powerbus.adapters.bank.errors import ProtocolError
from powerbus.adapters.bank.protocol.codec import MessageCodec
from powerbus.adapters.bank.protocol.codes import code_for
from powerbus.adapters.bank.protocol.messages import Body, Header, Message, MsgType, RespCode
from powerbus.adapters.bank.transport.session import Session
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import DeadlineExceeded, InvalidArgument, Unavailable
from powerbus.bus.kernel.lifecycle import Lifecycle

__all__ = ["Handler", "ProtocolServer", "ServerStats"]

log = logging.getLogger(__name__)

Handler = Callable[[Header, Body], Awaitable[Body]]
"""Answers one decoded request with a reply body, or raises a powerbus error."""


@dataclass
class ServerStats:
    """What a server saw; ``errors`` counts failures by error class name, ``recent`` keeps
    the last messages for diagnosis."""

    connections: int = 0
    requests: int = 0
    replies: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    recent: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))

    def record(self, error: BaseException) -> None:
        self.errors[type(error).__name__] += 1
        self.recent.append(f"{type(error).__name__}: {error}")


class ProtocolServer(Lifecycle):
    """Serves the bank protocol on ``listen`` (port 0 picks one; see :attr:`address`).

    ``handler_timeout`` bounds each handler call (answered ``9099`` when it passes);
    ``idle_timeout`` closes a connection that sends nothing for that long; ``io_timeout``
    bounds each write. ``concurrency`` requests of one connection are answered at once
    (1: strictly in order).
    """

    def __init__(
        self,
        *,
        codec: MessageCodec,
        handler: Handler,
        listen: HostPort = HostPort("127.0.0.1", 0),
        handler_timeout: dt.timedelta = dt.timedelta(seconds=10),
        idle_timeout: dt.timedelta = dt.timedelta(minutes=5),
        io_timeout: dt.timedelta = dt.timedelta(seconds=10),
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise InvalidArgument("concurrency", f"must be at least 1, got {concurrency}")
        self._codec = codec
        self._handler = handler
        self._listen = listen
        self._handler_timeout = handler_timeout.total_seconds()
        self._idle_timeout = idle_timeout.total_seconds()
        self._io_timeout = io_timeout.total_seconds()
        self._server: asyncio.Server | None = None
        self._concurrency = concurrency
        self._sessions: dict[asyncio.Task[None], Session] = {}
        self.stats = ServerStats()
        self.address = listen

    async def start(self) -> None:
        if self._server is not None:
            return
        try:
            self._server = await asyncio.start_server(
                self._accept, self._listen.host, self._listen.port
            )
        except OSError as exc:
            raise Unavailable(f"cannot listen on {self._listen}: {exc}") from None
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = HostPort(host, port)

    async def stop(self, grace: dt.timedelta = dt.timedelta(seconds=2)) -> None:
        """Stop accepting; close idle connections now, give those answering a request
        ``grace`` to write their replies, then cancel what is left. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task, session in list(self._sessions.items()):
            session.close_when_idle()
            if not session.busy:
                task.cancel()
        tasks = list(self._sessions)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace.total_seconds())
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio runs this in a task of its own; it is kept so that stop() can end it.
        task = asyncio.current_task()
        assert task is not None
        session = Session(
            reader,
            writer,
            answer=self._answer,
            record=self.stats.record,
            concurrency=self._concurrency,
            idle_timeout=self._idle_timeout,
            io_timeout=self._io_timeout,
        )
        self._sessions[task] = session
        self.stats.connections += 1
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("bank connection lost: %s", exc)
        except asyncio.TimeoutError:
            log.info("bank connection: write timed out, closing")
        finally:
            self.stats.replies += session.replies
            del self._sessions[task]
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), self._io_timeout)

    async def _answer(self, data: bytes) -> bytes | None:
        self.stats.requests += 1
        try:
            request = self._codec.decode(data)
        except ProtocolError as exc:
            self.stats.record(exc)
            log.warning("bank message refused: %s", exc)
            return self._error_reply(self._codec.peek_header(data), exc)
        head = request.header
        if head.msg_type is not MsgType.REQUEST or request.body is None:
            self.stats.record(ProtocolError("msg_type", 4, "a reply where requests are served"))
            return None
        try:
            body = await asyncio.wait_for(self._handler(head, request.body), self._handler_timeout)
        except asyncio.TimeoutError:
            late = DeadlineExceeded(f"handler took more than {self._handler_timeout:.1f}s")
            self.stats.record(late)
            return self._error_reply(head, late)
        except Exception as exc:  # a handler bug must not end the connection
            self.stats.record(exc)
            if code_for(exc) is RespCode.SYSTEM_ERROR:
                log.exception("bank handler failed on %s %s", head.txn_code.name, head.serial)
            return self._error_reply(head, exc)
        reply = Header(
            txn_code=head.txn_code,
            msg_type=MsgType.REPLY,
            bank_code=head.bank_code,
            serial=head.serial,
            sent_at=dt.datetime.now(),
        )
        return self._codec.encode(Message(reply, body))

    def _error_reply(self, head: Header | None, error: BaseException) -> bytes | None:
        if head is None or head.msg_type is not MsgType.REQUEST:
            return None  # nothing to address a reply to
        text = str(error).encode("gbk", "replace")[:40].decode("gbk", "ignore")
        reply = Header(
            txn_code=head.txn_code,
            msg_type=MsgType.REPLY,
            bank_code=head.bank_code,
            serial=head.serial,
            sent_at=dt.datetime.now(),
            resp_code=code_for(error),
            resp_msg=text,
        )
        try:
            return self._codec.encode(Message(reply, None))
        except InvalidArgument:  # no key for that bank: it cannot be answered
            return None
