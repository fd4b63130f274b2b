"""One accepted connection of a :class:`~.server.ProtocolServer`.

It reads frames and answers them, in order by default; with ``concurrency`` above 1 it
answers up to that many at once and writes each reply when ready (clients match replies
by serial, not by order). Whatever ends the reading — the peer closing, a bad length
header, the idle timeout, the server stopping — the replies to frames already received
are written before the connection closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from powerbus.adapters.bank.errors import FramingError, TruncatedMessage
from powerbus.adapters.bank.protocol.framing import FrameDecoder

__all__ = ["Session"]

log = logging.getLogger(__name__)

Answer = Callable[[bytes], Awaitable[bytes | None]]
Record = Callable[[BaseException], None]


class Session:
    """Serves one connection; ``answer`` turns a frame body into framed reply bytes."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        answer: Answer,
        record: Record,
        concurrency: int,
        idle_timeout: float,
        io_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._answer = answer
        self._record = record
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._idle_timeout = idle_timeout
        self._io_timeout = io_timeout
        self._write_lock = asyncio.Lock()
        self._inflight: set[asyncio.Task[None]] = set()
        self._active = 0
        self._closing = False
        self.replies = 0

    @property
    def busy(self) -> bool:
        """Whether a request is being answered (the server lets these finish on stop)."""
        return self._active > 0

    def close_when_idle(self) -> None:
        """Read no further frames; the server is stopping."""
        self._closing = True

    async def run(self) -> None:
        try:
            await self._read()
        finally:
            # Frames already received are answered whatever ended the reading.
            if self._inflight:
                await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _read(self) -> None:
        decoder = FrameDecoder()
        while not self._closing:
            try:
                data = await asyncio.wait_for(self._reader.read(65536), self._idle_timeout)
            except asyncio.TimeoutError:
                log.info("bank connection idle for %.0fs, closing", self._idle_timeout)
                return
            if not data:
                try:
                    decoder.end_of_stream()
                except TruncatedMessage as exc:
                    self._record(exc)
                    log.warning("bank connection ended inside a frame: %s", exc)
                return
            decoder.feed(data)
            while True:
                try:
                    body = decoder.next_frame()
                except FramingError as exc:
                    self._record(exc)
                    log.warning("bank connection: %s; closing it", exc)
                    return
                if body is None or self._closing:
                    break
                await self._dispatch(body)

    async def _dispatch(self, body: bytes) -> None:
        if self._concurrency == 1:
            await self._answer_and_write(body)
            return
        await self._slots.acquire()
        task = asyncio.create_task(self._answer_and_write(body))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        task.add_done_callback(lambda _task: self._slots.release())

    async def _answer_and_write(self, body: bytes) -> None:
        self._active += 1
        try:
            reply = await self._answer(body)
            if reply is None:
                return
            # One writer at a time, so concurrent replies never interleave their bytes.
            async with self._write_lock:
                self._writer.write(reply)
                await asyncio.wait_for(self._writer.drain(), self._io_timeout)
            self.replies += 1
        finally:
            self._active -= 1
