"""A client connection of the bank protocol, with pipelined requests and a deadline on each.

Replies are matched to requests by transaction code and serial, so several requests may
be in flight on one connection. A lost connection fails every pending request with
``Unavailable`` and is dialled again by the next request.

>>> # async with ProtocolClient(address=HostPort("127.0.0.1", 9100), codec=codec,
>>> #                           bank_code="0102") as client:
>>> #     reply = await client.call(StatusQuery(target_serial="S1", txn_date=day),
>>> #                               serial="Q1", timeout=dt.timedelta(seconds=5))
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from powerbus.adapters.bank.errors import ProtocolError
from powerbus.adapters.bank.protocol.codec import MessageCodec
from powerbus.adapters.bank.protocol.codes import error_for
from powerbus.adapters.bank.protocol.framing import FrameDecoder
from powerbus.adapters.bank.protocol.messages import Body, Header, Message, MsgType, TxnCode
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import DeadlineExceeded, Unavailable
from powerbus.bus.kernel.lifecycle import Lifecycle

__all__ = ["ProtocolClient"]

log = logging.getLogger(__name__)

_Key = tuple[TxnCode, str]


class ProtocolClient(Lifecycle):
    """One connection to a bank-protocol server at ``address``, as bank ``bank_code``."""

    def __init__(
        self,
        *,
        address: HostPort,
        codec: MessageCodec,
        bank_code: str,
        connect_timeout: dt.timedelta = dt.timedelta(seconds=5),
    ) -> None:
        self._address = address
        self._codec = codec
        self.bank_code = bank_code
        self._connect_timeout = connect_timeout.total_seconds()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[_Key, asyncio.Future[Message]] = {}
        self._lock = asyncio.Lock()
        self.protocol_errors = 0

    async def start(self) -> None:
        await self._connected()

    async def stop(self) -> None:
        task, self._reader_task = self._reader_task, None
        writer, self._writer = self._writer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), self._connect_timeout)
        self._fail_pending(Unavailable("client stopped"))

    async def call(
        self,
        body: Body,
        *,
        serial: str,
        timeout: dt.timedelta,
        sent_at: dt.datetime | None = None,
    ) -> Body:
        """Send ``body`` as a request with ``serial``; return the reply body.

        Raises the error the reply's code stands for, ``DeadlineExceeded`` when no reply
        came within ``timeout`` (the request may still have been applied: resolve it by
        status query or reversal before sending anything new), ``Unavailable`` when the
        connection cannot be made or is lost.
        """
        header = Header(
            txn_code=body.TXN_CODE,
            msg_type=MsgType.REQUEST,
            bank_code=self.bank_code,
            serial=serial,
            sent_at=sent_at or dt.datetime.now(),
        )
        reply = await self.request(Message(header, body), timeout=timeout)
        if reply.body is None:
            raise error_for(reply.header.resp_code, reply.header.resp_msg)
        return reply.body

    async def request(self, message: Message, *, timeout: dt.timedelta) -> Message:
        """Send ``message`` and wait for its reply (whatever its response code)."""
        key = (message.header.txn_code, message.header.serial)
        return await self.exchange_raw(self._codec.encode(message), key=key, timeout=timeout)

    async def exchange_raw(self, data: bytes, *, key: _Key, timeout: dt.timedelta) -> Message:
        """Send framed bytes as they are and wait for the reply addressed to ``key``
        (transaction code, serial): for simulating a peer that sends broken messages."""
        if key in self._pending:
            raise ProtocolError("serial", -1, f"{key[1]!r} is already in flight")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[key] = future

        async def exchange() -> Message:
            await self._send(data)
            return await future

        try:
            return await asyncio.wait_for(exchange(), timeout.total_seconds())
        except asyncio.TimeoutError:
            raise DeadlineExceeded(
                f"no reply to {key[0].name} {key[1]} within {timeout.total_seconds():.3f}s"
            ) from None
        finally:
            self._pending.pop(key, None)
            # A future failed by a lost connection while the send itself failed is never
            # awaited; taking its exception keeps asyncio from reporting it as lost.
            if future.done() and not future.cancelled():
                future.exception()

    async def send_raw(self, data: bytes, *, timeout: dt.timedelta) -> None:
        """Write bytes as they are (no framing, no MAC): for simulating broken peers."""
        try:
            await asyncio.wait_for(self._send(data), timeout.total_seconds())
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"could not write to {self._address} in time") from None

    async def _send(self, data: bytes) -> None:
        writer = await self._connected()
        try:
            writer.write(data)
            await writer.drain()
        except ConnectionError as exc:
            self._lost(Unavailable(f"bank link to {self._address} lost: {exc}"))
            raise Unavailable(f"bank link to {self._address} lost: {exc}") from None

    async def _connected(self) -> asyncio.StreamWriter:
        async with self._lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self._address.host, self._address.port),
                    self._connect_timeout,
                )
            except (OSError, asyncio.TimeoutError) as exc:
                raise Unavailable(f"cannot reach bank link {self._address}: {exc!r}") from None
            self._writer = writer
            self._reader_task = asyncio.create_task(
                self._read(reader, writer), name=f"bank-client-{self._address}"
            )
            return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                decoder.feed(data)
                while (frame := decoder.next_frame()) is not None:
                    self._deliver(frame)
            decoder.end_of_stream()
            self._lost(Unavailable(f"bank link {self._address} closed by peer"))
        except (ProtocolError, ConnectionError) as exc:
            self._lost(Unavailable(f"bank link {self._address}: {exc}"))
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()

    def _deliver(self, frame: bytes) -> None:
        try:
            message = self._codec.decode(frame)
        except ProtocolError as exc:
            # The request it answers stays pending and meets its deadline.
            self.protocol_errors += 1
            log.warning("bank reply refused: %s", exc)
            return
        future = self._pending.get((message.header.txn_code, message.header.serial))
        if future is None or future.done() or message.header.msg_type is not MsgType.REPLY:
            # A reply nobody waits for: its request met its deadline (or was sent blind).
            log.debug(
                "unclaimed bank reply %s %s", message.header.txn_code.name, message.header.serial
            )
            return
        future.set_result(message)

    def _lost(self, error: Unavailable) -> None:
        self._writer = None
        self._fail_pending(error)

    def _fail_pending(self, error: Unavailable) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
