"""A line: one TCP connection to one serial gateway, one request in flight at a time.

An RS-485 line has one master, so every request on it is serialised by the line's lock;
different lines run in parallel because each has its own connection and lock. Every
network await has a deadline from :class:`LineConfig`.

The transport is an ``asyncio.Protocol`` rather than streams: bytes go straight to the
receiver the current request installed, and a request waits on one future with one
timer, so an exchange creates no task; a poll may chain its next request from the
receiver itself (:meth:`TcpLine.write`), with no future at all. Bytes that arrive while
no request is waiting answer an earlier, timed-out request and are dropped.

>>> LineConfig().request_timeout.total_seconds()
1.0
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

from powerbus.adapters.meters.errors import GatewayUnreachable
from powerbus.bus.kernel.addresses import HostPort

__all__ = ["LineConfig", "Receiver", "TcpLine"]

Receiver = Callable[[bytes], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class LineConfig:
    """Deadlines of a line.

    ``request_timeout`` covers one exchange once the line is ours (request and reply on
    the wire plus the meter's turnaround), not the wait for the line; wrap a call in
    ``asyncio.wait_for`` for an overall deadline.
    """

    connect_timeout: timedelta = timedelta(seconds=2)
    request_timeout: timedelta = timedelta(seconds=1)


class _LineProtocol(asyncio.Protocol):
    def __init__(self, line: TcpLine) -> None:
        self._line = line
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        receiver = self._line.receiver
        if receiver is not None:
            receiver(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self._line._lost(self, exc)


class _Direct(asyncio.Protocol):
    """The connection's protocol while a poll takes its bytes straight: ``data_received``
    is the poll's receiver itself. The transport binds a protocol's ``data_received``
    when the protocol is set, so every read then reaches the poll with no call in
    between (a poll receives thousands)."""

    def __init__(self, line_protocol: _LineProtocol, receive: Receiver) -> None:
        self.data_received = receive  # type: ignore[method-assign,assignment]
        self._line_protocol = line_protocol

    def connection_lost(self, exc: Exception | None) -> None:
        self._line_protocol.connection_lost(exc)


class TcpLine:
    """The byte transport of a transparent serial gateway (used by DL/T 645).

    A request holds the line (:meth:`held`), sets :attr:`receiver`, calls :meth:`send`,
    and waits for its reply; :attr:`on_lost` hears of a dropped connection. The
    connection opens lazily and is dropped by :meth:`reset`, so a broken stream never
    outlives a request. A poll holding the line for many requests gives it up between
    meters when :attr:`waiting` says another request is queued for it.
    """

    def __init__(self, gateway: HostPort, *, config: LineConfig | None = None) -> None:
        self.gateway = gateway
        self.config = config or LineConfig()
        self.lock = asyncio.Lock()
        self.waiting = 0
        """Requests queued for the line (in :meth:`held`), not yet holding it."""
        self.receiver: Receiver | None = None
        self.on_lost: Callable[[Exception | None], None] | None = None
        self._transport: asyncio.Transport | None = None
        self._protocol: _LineProtocol | None = None

    @property
    def connected(self) -> bool:
        """Whether the gateway connection is open."""
        return self._transport is not None and not self._transport.is_closing()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold the line (its lock) for the block; counted in :attr:`waiting` until then."""
        self.waiting += 1
        try:
            await self.lock.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.lock.release()

    async def connect(self, meter: str) -> None:
        """Open the connection unless it is open; ``meter`` is named in the error."""
        if not self.connected:
            await self._connect(meter)

    async def send(self, data: bytes, *, meter: str) -> None:
        """Write ``data``, connecting first if needed (frames are small: no drain)."""
        await self.connect(meter)
        self.write(data)

    def write(self, data: bytes) -> None:
        """Write ``data`` on the open connection (:meth:`connect` first)."""
        assert self._transport is not None, "TcpLine.write before connect"
        self._transport.write(data)

    def direct(self, receive: Receiver) -> None:
        """Deliver the open connection's bytes straight to ``receive`` (:attr:`receiver`
        is bypassed) until :meth:`indirect`; a lost connection still reaches
        :attr:`on_lost`."""
        assert self._transport is not None and self._protocol is not None, "not connected"
        self._transport.set_protocol(_Direct(self._protocol, receive))

    def indirect(self) -> None:
        """Deliver bytes to :attr:`receiver` again (after :meth:`direct`)."""
        if self._transport is not None and self._protocol is not None:
            self._transport.set_protocol(self._protocol)

    def writer(self) -> Callable[[bytes], None]:
        """The open connection's own write (a poll sending thousands of frames on one
        connection calls it directly)."""
        assert self._transport is not None, "TcpLine.writer before connect"
        return self._transport.write

    def drop(self) -> None:
        """Close the connection now, from a callback (:attr:`connected` turns False at
        once); the next request reconnects. :meth:`reset` also waits for the close."""
        if self._transport is not None:
            self._transport.close()

    async def reset(self) -> None:
        """Drop the connection; the next request reconnects."""
        transport, protocol = self._transport, self._protocol
        self._transport = self._protocol = None
        if transport is not None and protocol is not None:
            transport.close()
            # wait for the close to finish, so a stopped client leaves no open socket
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(protocol.closed), self.config.connect_timeout.total_seconds()
                )

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self.reset()

    def _lost(self, protocol: _LineProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return  # an old connection, already replaced
        self._transport = self._protocol = None
        if self.on_lost is not None:
            self.on_lost(exc)

    async def _connect(self, meter: str) -> None:
        loop = asyncio.get_running_loop()
        protocol = _LineProtocol(self)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: protocol, self.gateway.host, self.gateway.port),
                self.config.connect_timeout.total_seconds(),
            )
        except (OSError, asyncio.TimeoutError) as error:
            raise GatewayUnreachable(
                meter=meter, gateway=str(self.gateway), problem=f"cannot connect: {error!r}"
            ) from None
        self._transport, self._protocol = transport, protocol
