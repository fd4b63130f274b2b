"""The bus's end of a node link: unary calls as frames on one TCP connection per node.

The link opens lazily, on the first call to a node: ``Where`` on the node's gRPC channel
gives the link's port and token, then the connection is made and the hellos exchanged.
Until then (and whenever the connection is down, its send buffer is full, or the node has
no link: UNIMPLEMENTED, asked again every five minutes) calls take the ordinary gRPC
path, so the link can only make calls cheaper, never make them fail.

A call's deadline is kept here (a timer, not a task per call): when it passes the caller
gets DEADLINE_EXCEEDED and the node a cancel frame. A draining node sends goaway: new calls
are refused here as never run (they go to other nodes) and the connection closes once its
calls are answered. A connection
that breaks fails the calls on it with UNAVAILABLE, marked as possibly run (the node may
have had them), so only idempotent ones are retried elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl as _ssl
from collections.abc import Coroutine
from typing import Any

import grpc

from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.transport.frames import (
    GOAWAY,
    HELLO,
    REPLY,
    WHERE_PATH,
    FrameWriter,
    MessageReader,
    decode_where,
    encode_call,
    encode_cancel,
    encode_hello,
)
from powerbus.bus.transport.reply import Metadata, Reply
from powerbus.load_balancer.status import StatusCode

__all__ = ["NodeLink"]

log = logging.getLogger(__name__)

_OPEN_TIMEOUT_S = 2.0
_NO_LINK_RETRY_S = 300.0
_GOING_AWAY_RETRY_S = 1.0


async def _at_once(reply: Reply) -> Reply:
    return reply


class NodeLink:
    """The link to one node (a :class:`~powerbus.bus.transport.reply.Transport`):
    ``usable()`` before each call, ``call()`` to make one."""

    def __init__(
        self, channel: grpc.aio.Channel, address: str, *, ssl: _ssl.SSLContext | None = None
    ) -> None:
        self.address = address
        self._ssl = ssl
        """With TLS to the node, the link is TLS too (mutual: the context carries our
        certificate), verified against the same host as the channel."""
        self._channel = channel
        self._connection: _Connection | None = None
        self._leaving: set[_Connection] = set()
        self.supported = True
        """False once the node answered that it has no link (it is asked again later)."""
        self._failures = 0
        self._retry_at = 0.0
        self._next_id = 0
        self._opening: asyncio.Task[None] | None = None
        self._closed = False
        self.draining = False
        """The node said goaway: calls are refused here as never run (so they go to other
        nodes) until a process at this address answers ``Where`` again."""

    @property
    def ready(self) -> bool:
        """Whether the link is up (hellos exchanged, the node not going away)."""
        return self._connection is not None

    def usable(self) -> bool:
        """Whether calls can go on the link now; starts opening it if not."""
        connection = self._connection
        if connection is not None:
            return not connection.paused
        if self._opening is None and not self._closed:
            loop = asyncio.get_running_loop()
            if loop.time() >= self._retry_at:
                self._opening = loop.create_task(self._open(), name=f"link to {self.address}")
        return self.draining

    def call(
        self, path: str, metadata: Metadata, payload: bytes, timeout: float | None
    ) -> Coroutine[Any, Any, Reply]:
        """Send one call; await its reply (made up here on a deadline or a broken link).
        A plain function returning the connection's coroutine: one frame less to resume on
        every call."""
        connection = self._connection
        if connection is None:
            problem = "is draining" if self.draining else "has no link up"
            details = f"node at {self.address} {problem}"
            return _at_once(Reply(StatusCode.UNAVAILABLE, details=details, ran=False))
        self._next_id = call_id = (self._next_id + 1) & 0xFFFFFFFF
        return connection.call(call_id, path, metadata, payload, timeout)

    async def close(self) -> None:
        """Fail what is pending and stop; the channel is the pool's to close."""
        self._closed = True
        opening, self._opening = self._opening, None
        if opening is not None:
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        connections = [*self._leaving, *([self._connection] if self._connection else [])]
        self._connection, self._leaving = None, set()
        for connection in connections:
            connection.end("the link was closed")

    async def _open(self) -> None:
        try:
            await asyncio.wait_for(self._connect(), _OPEN_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                # Not an SDK node (or an old one): plain calls only; ask again much later,
                # in case it is upgraded in place.
                self.supported = False
                self.draining = False
            self._failed(f"no link address: {exc.code().name} {exc.details()}")
        except (OSError, ValueError, PowerbusError, asyncio.TimeoutError) as exc:
            self._failed(f"link not opened: {exc or type(exc).__name__}")
        finally:
            self._opening = None

    async def _connect(self) -> None:
        where: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(
            WHERE_PATH
        )
        port, token = decode_where(await where(b"", timeout=_OPEN_TIMEOUT_S))
        host = parse_host_port(self.address).host
        loop = asyncio.get_running_loop()
        connection = _Connection(self, token, loop.create_future())
        try:
            await loop.create_connection(
                lambda: connection,
                host,
                port,
                ssl=self._ssl,
                server_hostname=host if self._ssl is not None else None,
            )
            connection.send(encode_hello(token))
            await connection.hello
        except BaseException:
            connection.end("link not opened")
            raise
        self.supported = True
        self.draining = False
        self._failures = 0
        self._connection = connection

    def _failed(self, reason: str) -> None:
        self._failures += 1
        loop = asyncio.get_running_loop()
        if self.supported:
            self._retry_at = loop.time() + random.uniform(0, min(5.0, 0.1 * 2**self._failures))
        else:
            self._retry_at = loop.time() + _NO_LINK_RETRY_S
        log.debug("link to %s: %s", self.address, reason)

    def _lost(self, connection: _Connection, reason: str) -> None:
        self._leaving.discard(connection)
        if connection is self._connection:
            self._connection = None
            log.info("link to %s down: %s", self.address, reason)
            self._failed(reason)

    def _going_away(self, connection: _Connection) -> None:
        """The node drains: no new calls on this connection; it closes once answered."""
        if connection is self._connection:
            self._connection = None
            self.draining = True
            self._leaving.add(connection)
            # Its gRPC server stops soon too: refuse here rather than race the stop.
            self._retry_at = asyncio.get_running_loop().time() + _GOING_AWAY_RETRY_S


class _Connection(asyncio.Protocol):
    """One TCP connection of a link: its calls in flight, frames out, replies in."""

    def __init__(self, link: NodeLink, token: bytes, hello: asyncio.Future[None]) -> None:
        self._link = link
        self._token = token
        self.hello = hello
        self._reader = MessageReader()
        self._writer = FrameWriter()
        self.send = self._writer.send
        self.paused = False
        self._going_away = False
        self._ended = False
        self._pending: dict[int, tuple[asyncio.Future[Reply], asyncio.TimerHandle | None]] = {}

    async def call(
        self, call_id: int, method: str, metadata: Metadata, payload: bytes, timeout: float | None
    ) -> Reply:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        timer = loop.call_later(timeout, self._expire, call_id) if timeout is not None else None
        self._pending[call_id] = (future, timer)
        self.send(encode_call(call_id, method, timeout, metadata, payload))
        try:
            return await future
        except asyncio.CancelledError:
            self._forget(call_id)
            raise

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._writer.attach(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        try:
            for frame in self._reader.feed(data):
                kind = frame.kind
                if kind == REPLY:
                    entry = self._pending.pop(frame.call_id, None)
                    if entry is not None:
                        future, timer = entry
                        if timer is not None:
                            timer.cancel()
                        if not future.done():
                            future.set_result(
                                Reply(
                                    StatusCode.from_number(frame.code),
                                    bytes(frame.payload),
                                    details=frame.details,
                                    initial=frame.initial,
                                    trailing=frame.trailing,
                                    ran=frame.ran,
                                )
                            )
                elif kind == GOAWAY:
                    self._going_away = True
                    self._link._going_away(self)
                elif kind == HELLO and not self.hello.done():
                    if frame.payload == self._token:
                        self.hello.set_result(None)
                    else:
                        self.hello.set_exception(ValueError("the node's hello has a wrong token"))
        except ValueError as exc:
            self.end(f"link garbled: {exc}")
            return
        self._close_if_done()

    def connection_lost(self, exc: Exception | None) -> None:
        self.end(f"link broke: {exc}" if exc else "the node ended the link")

    def pause_writing(self) -> None:
        # The node reads slower than calls come: new calls take the plain path meanwhile.
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # Calls ending without a reply

    def _expire(self, call_id: int) -> None:
        entry = self._pending.pop(call_id, None)
        if entry is None:
            return
        future, _timer = entry
        if not future.done():
            future.set_result(Reply(StatusCode.DEADLINE_EXCEEDED, details="Deadline Exceeded"))
        self.send(encode_cancel(call_id))
        self._close_if_done()

    def _forget(self, call_id: int) -> None:
        entry = self._pending.pop(call_id, None)
        if entry is not None:
            if entry[1] is not None:
                entry[1].cancel()
            self.send(encode_cancel(call_id))
        self._close_if_done()

    def _close_if_done(self) -> None:
        # After the node's goaway, the last answer closes the connection: the node waits
        # for that, refusing (as never run) any call that crossed its goaway on the wire.
        if self._going_away and not self._pending:
            self.end("the node went away")

    def end(self, reason: str) -> None:
        """Close, failing the calls in flight (they may have run). Idempotent."""
        if self._ended:
            return
        self._ended = True
        if not self.hello.done():
            self.hello.set_exception(ConnectionError(reason))
            self.hello.exception()  # retrieved: whoever awaited it has gone
        self._writer.close()
        pending, self._pending = self._pending, {}
        for future, timer in pending.values():
            if timer is not None:
                timer.cancel()
            if not future.done():
                future.set_result(Reply(StatusCode.UNAVAILABLE, details=reason))
        self._link._lost(self, reason)
